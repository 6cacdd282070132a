"""Monitoring under test: scrape every service's ``/metrics`` once a second during a drill.

Each scrape goes to ``RUN_DIR/metrics.jsonl`` (one line per service and scrape, on the
history clock) and, with a ``service`` label added, into an
:class:`faultline.alerts.AlertEvaluator`. Breaker state changes
(``payments_breaker_state``) are kept for the report.
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

BREAKER_METRIC = "payments_breaker_state"
BREAKER_STATES = {0: "closed", 1: "half_open", 2: "open"}


class MetricsScraper:
    """A daemon thread scraping ``urls`` (service -> metrics URL) every ``interval`` s."""

    def __init__(self, urls: dict[str, str], out: Path, evaluator: Any = None, *,
                 interval: float = 1.0, timeout: float = 0.8,
                 clock: Callable[[], int] = time.monotonic_ns) -> None:
        self.urls = dict(urls)
        self.out = out
        self.evaluator = evaluator
        self.interval = interval
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
                if s.name.startswith("payments_") and not s.name.endswith(("_bucket", "_created")):
                    key = s.name + ("{" + ",".join(f"{k}={v}" for k, v in s.labels) + "}"
                                    if s.labels else "")
                    values[key] = s.value
                if s.name == BREAKER_METRIC:
                    name = labels.get("breaker") or labels.get("name") or ",".join(
                        f"{k}={v}" for k, v in s.labels) or "?"
                    self._breaker(now, service, name, s.value)
            lines.append(json.dumps({"time_ns": now, "service": service, "up": 1,
                                     "values": values}))
        with self._lock:
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
            next_at += self.interval
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

    def firing(self) -> list[str]:
        """Alerts firing now."""
        with self._lock:
            return list(self.evaluator.firing()) if self.evaluator is not None else []
