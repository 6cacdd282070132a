"""Per-second series of a history, for the report's plots and the progress line."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._histogram import LatencyHistogram
from ._history import ERROR, OK, history_index, ops_by_start
from ._result import CheckContext

__all__ = ["timeseries"]


def timeseries(
    history: Any,
    *,
    bucket_s: float = 1.0,
    context: CheckContext | None = None,
) -> list[dict[str, Any]]:
    """One row per ``bucket_s`` from the first line of the history.

    Row: ``t`` (seconds since start), ``ok``, ``errors``, ``fails`` (expected
    refusals), ``throughput`` (ok/s), ``p50_ms``, ``p99_ms`` (``None`` when empty).
    ``history`` is a list of dicts or a record source (``faultline.checks.open_run``).
    """
    ctx = context if context is not None else CheckContext()
    ix = history_index(history, ctx)
    starts, lats, outs = ops_by_start(history, ctx)
    if ix.first_ns is None or not len(starts):
        return []
    origin = ctx.run_start_ns if ctx.run_start_ns is not None else ix.first_ns
    width = bucket_s * 1e9
    n = len(starts)
    # operations invoked before the origin count in the first bucket
    buckets = max(1, int(np.ceil((float(starts[-1]) - origin) / width)) + 1)
    edges = np.searchsorted(starts, origin + np.arange(1, buckets + 1, dtype=np.float64) * width)
    series = []
    lo = 0
    for b, hi in enumerate(edges.tolist()):
        if lo >= n:
            break
        window = outs[lo:hi]
        ok_mask = window == OK
        ok = int(np.count_nonzero(ok_mask))
        errors = int(np.count_nonzero(window == ERROR))
        hist = LatencyHistogram()
        hist.record_array(lats[lo:hi][ok_mask])
        series.append(
            {
                "t": b * bucket_s,
                "ok": ok,
                "errors": errors,
                "fails": len(window) - ok - errors,
                "throughput": ok / bucket_s,
                "p50_ms": hist.percentile(50) if hist.count else None,
                "p99_ms": hist.percentile(99) if hist.count else None,
            }
        )
        lo = hi
    return series
