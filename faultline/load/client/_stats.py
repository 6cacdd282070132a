"""Locust's own statistics, kept from growing with the length of the load.

Locust counts requests and failures per second of wall time (``num_reqs_per_sec`` and
``num_fail_per_sec`` of every stats entry and of the total) and adds a chart point every
5 s (``stats.history``), for the whole run, in every Locust process. At 200 operations/s
that is ~1.6 MB an hour of a soak (``benchmarks/soak.py --trace``), growing for as long
as the load runs. A headless drill reads none of it after a few seconds: its summary
uses the totals and the response-time buckets, the "current" rates the last 12 s, and
the verdict the history files. Every :data:`TRIM_INTERVAL` seconds, what is older than
:data:`KEEP_SECONDS` is dropped.

The bookkeeping is plain Python (tested without Locust); :func:`install_stats_trim`
wires it to a Locust environment.
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

__all__ = ["KEEP_SECONDS", "TRIM_INTERVAL", "install_stats_trim", "trim_stats"]

#: seconds of per-second counts kept (Locust's current rates read the last 12)
KEEP_SECONDS = 30
#: seconds between two trims
TRIM_INTERVAL = 30.0
#: Locust adds a chart point every 5 s: the last ones of KEEP_SECONDS are kept
CHART_POINTS = KEEP_SECONDS // 5


def trim_stats(stats: Any, now: float) -> int:
    """Drop the per-second counts of ``stats`` (a ``locust.stats.RequestStats``) older
    than ``now - KEEP_SECONDS`` and its older chart points; returns the seconds dropped."""
    oldest = int(now) - KEEP_SECONDS
    dropped = 0
    for entry in (*stats.entries.values(), stats.total):
        for name in ("num_reqs_per_sec", "num_fail_per_sec"):
            counts = getattr(entry, name)
            if any(second < oldest for second in counts):
                # a new dict: a dict never shrinks its table when keys are deleted
                kept = defaultdict(int, {s: n for s, n in counts.items() if s >= oldest})
                dropped += len(counts) - len(kept)
                setattr(entry, name, kept)
    del stats.history[:-CHART_POINTS]
    return dropped


def install_stats_trim(environment: Any) -> None:
    """Trim ``environment.stats`` every :data:`TRIM_INTERVAL` seconds (a greenlet)."""
    import gevent

    def trim() -> None:
        while True:
            gevent.sleep(TRIM_INTERVAL)
            trim_stats(environment.stats, time.time())

    gevent.spawn(trim)
