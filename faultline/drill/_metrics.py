"""Monitoring under test: scrape every service's ``/metrics`` during a drill.

Each scrape goes to ``RUN_DIR/metrics.jsonl`` as it happens (one line per service and
scrape, on the history clock; only the system's own series, named by its profile's
``metric_prefix``), and, with a ``service`` label added, into an
:class:`faultline.alerts.AlertEvaluator`. Breaker state changes (the profile's
``breaker_state`` metric) are kept for the report. The latest value of every series,
summed over services and labels, answers triggered faults (:meth:`metric`); while one is
waiting the scraper looks every :data:`FAST_INTERVAL` seconds instead of every second.
Nothing grows with the drill's length but the file.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["MetricsScraper"]

BREAKER_STATES = {0: "closed", 1: "half_open", 2: "open"}
#: seconds between scrapes while a triggered fault waits for its condition
FAST_INTERVAL = 0.25


class MetricsScraper:
    """A daemon thread scraping ``urls`` (service -> metrics URL) every ``interval`` s."""

    def __init__(self, urls: dict[str, str], out: Path, evaluator: Any = None, *,
                 prefix: str = "", breaker_metric: str | None = None,
                 interval: float = 1.0, timeout: float = 0.8,
                 clock: Callable[[], int] = time.monotonic_ns) -> None:
        self.urls = dict(urls)
        self.out = out
        self.evaluator = evaluator
        self.prefix = prefix
        self.breaker_metric = breaker_metric
        self.interval = interval
        #: set while a triggered fault waits: scrape every FAST_INTERVAL seconds
        self.fast = threading.Event()
        self.latest: dict[str, float] = {}
        self.timeout = timeout
        self.clock = clock
        self.breaker_events: list[dict[str, Any]] = []
        self.scrapes = 0
        self.failures = 0
        self._breakers: dict[tuple[str, str], float] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def _fetch(self, url: str) -> str | None:
        try:
            with urllib.request.urlopen(url, timeout=self.timeout) as resp:
                return str(resp.read().decode("utf-8", "replace"))
        except Exception:  # a service down under a fault is what drills are for
            return None

    def scrape_once(self) -> None:
        """One round over every service."""
        from faultline.alerts import Sample, parse_prometheus_text

        merged: list[Any] = []
        now = self.clock()
        lines: list[str] = []
        totals: dict[str, float] = {}
        for service, url in self.urls.items():
            text = self._fetch(url)
            if text is None:
                self.failures += 1
                lines.append(json.dumps({"time_ns": now, "service": service, "up": 0}))
                continue
            samples = parse_prometheus_text(text)
            values: dict[str, float] = {}
            for s in samples:
                labels = dict(s.labels)
                labels.setdefault("service", service)
                merged.append(Sample(s.name, tuple(sorted(labels.items())), s.value))
                if s.name.startswith(self.prefix) and not s.name.endswith(("_bucket", "_created")):
                    key = s.name + ("{" + ",".join(f"{k}={v}" for k, v in s.labels) + "}"
                                    if s.labels else "")
                    values[key] = s.value
                    totals[s.name] = totals.get(s.name, 0.0) + s.value
                if s.name == self.breaker_metric:
                    name = labels.get("breaker") or labels.get("name") or ",".join(
                        f"{k}={v}" for k, v in s.labels) or "?"
                    self._breaker(now, service, name, s.value)
            lines.append(json.dumps({"time_ns": now, "service": service, "up": 1,
                                     "values": values}))
        with self._lock:
            self.latest = totals
            self.scrapes += 1
            if self.evaluator is not None:
                self.evaluator.observe(now, merged)
            with open(self.out, "a", encoding="utf-8") as fh:
                fh.write("\n".join(lines) + "\n")

    def _breaker(self, now: int, service: str, name: str, value: float) -> None:
        key = (service, name)
        old = self._breakers.get(key)
        self._breakers[key] = value
        if old is not None and old != value:
            self.breaker_events.append({
                "time_ns": now, "name": f"{service}:{name}",
                "old": BREAKER_STATES.get(int(old), str(old)),
                "new": BREAKER_STATES.get(int(value), str(value)),
            })

    def _run(self) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set():
            self.scrape_once()
            next_at += FAST_INTERVAL if self.fast.is_set() else self.interval
            delay = next_at - time.monotonic()
            if delay < 0:
                next_at = time.monotonic()
                delay = 0
            if self._stop.wait(delay):
                return

    def start(self) -> MetricsScraper:
        self._thread = threading.Thread(target=self._run, name="metrics", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)

    def metric(self, name: str) -> float | None:
        """The latest value of ``name``, summed over services and labels (None before
        the first scrape that saw it)."""
        with self._lock:
            return self.latest.get(name)

    def firing(self) -> list[str]:
        """Alerts firing now."""
        with self._lock:
            return list(self.evaluator.firing()) if self.evaluator is not None else []
