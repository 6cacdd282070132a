"""Locust's own statistics stay bounded over a long load (``_stats.trim_stats``)."""

from __future__ import annotations

import subprocess
import sys
from collections import defaultdict
from types import SimpleNamespace
from typing import Any

from faultline.load.client._stats import CHART_POINTS, KEEP_SECONDS, trim_stats


def _entry(seconds: range) -> Any:
    return SimpleNamespace(num_reqs_per_sec=defaultdict(int, {s: 3 for s in seconds}),
                           num_fail_per_sec=defaultdict(int, {s: 1 for s in seconds[::10]}))


def test_old_seconds_and_chart_points_are_dropped() -> None:
    now = 10_000.0
    stats = SimpleNamespace(entries={("transfer", "POST"): _entry(range(8_000, 10_001))},
                            total=_entry(range(8_000, 10_001)),
                            history=[{"time": i} for i in range(400)])
    dropped = trim_stats(stats, now)
    for entry in (stats.entries[("transfer", "POST")], stats.total):
        assert min(entry.num_reqs_per_sec) == 10_000 - KEEP_SECONDS
        assert len(entry.num_reqs_per_sec) == KEEP_SECONDS + 1
        entry.num_reqs_per_sec[10_001] += 1  # Locust keeps counting into it
        assert entry.num_reqs_per_sec[10_001] == 1
        assert all(s >= 10_000 - KEEP_SECONDS for s in entry.num_fail_per_sec)
    assert stats.history == [{"time": i} for i in range(400 - CHART_POINTS, 400)]
    assert dropped > 2 * 1_900
    assert trim_stats(stats, now) == 0  # nothing left to drop


def test_trim_works_on_locusts_own_stats() -> None:
    # in a subprocess: importing Locust monkey-patches the interpreter with gevent
    code = """
import time
from locust.stats import RequestStats
from faultline.load.client._stats import KEEP_SECONDS, trim_stats
stats = RequestStats()
now = time.time()
for entry in (stats.get("transfer", "POST"), stats.total):
    for second in range(int(now) - 3600, int(now) + 1):
        entry.num_reqs_per_sec[second] += 200
        entry.num_fail_per_sec[second] += 1
stats.history.extend({"time": i} for i in range(720))
trim_stats(stats, now)
entry = stats.get("transfer", "POST")
assert len(entry.num_reqs_per_sec) == KEEP_SECONDS + 1, len(entry.num_reqs_per_sec)
entry.log(12, 100)
entry.log_error("HTTP 503")
assert entry.current_rps >= 0 and stats.total.current_rps >= 0
assert len(stats.history) == KEEP_SECONDS // 5
print("ok")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert out.stdout.strip() == "ok", out.stderr[-2000:]
