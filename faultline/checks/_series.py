"""Per-second series of a history, for the report's plots and the progress line."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping, Sequence
from itertools import compress
from operator import not_
from typing import Any

from ._histogram import LatencyHistogram
from ._history import ERROR, OK, history_index, ops_by_start
from ._result import CheckContext

__all__ = ["timeseries"]


def timeseries(
    history: Sequence[Mapping[str, Any]],
    *,
    bucket_s: float = 1.0,
    context: CheckContext | None = None,
) -> list[dict[str, Any]]:
    """One row per ``bucket_s`` from the first line of the history.

    Row: ``t`` (seconds since start), ``ok``, ``errors``, ``fails`` (expected
    refusals), ``throughput`` (ok/s), ``p50_ms``, ``p99_ms`` (``None`` when empty).
    """
    ctx = context if context is not None else CheckContext()
    ix = history_index(history, ctx)
    starts, lats, outs = ops_by_start(history, ctx)
    if ix.first_ns is None or not starts:
        return []
    origin = ctx.run_start_ns if ctx.run_start_ns is not None else ix.first_ns
    width = bucket_s * 1e9
    series = []
    lo = bisect_left(starts, origin)
    if lo:  # operations invoked before the origin count in the first bucket
        lo = 0
    b = 0
    while lo < len(starts):
        hi = bisect_left(starts, origin + (b + 1) * width, lo)
        window = outs[lo:hi]
        ok = window.count(OK)
        errors = window.count(ERROR)
        hist = LatencyHistogram()
        hist.record_many(compress(lats[lo:hi], map(not_, window)))
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
        b += 1
    return series
