"""Per-second series of a history, for the report's plots and the progress line."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ._histogram import LatencyHistogram
from ._history import ERROR, OK, history_index
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
    if ix.first_ns is None or not ix.start_ns:
        return []
    origin = ctx.run_start_ns if ctx.run_start_ns is not None else ix.first_ns
    width = int(bucket_s * 1e9)
    rows: dict[int, list[Any]] = {}
    for t, lat, out in zip(ix.start_ns, ix.latency_ms, ix.outcome, strict=True):
        b = max(0, (t - origin) // width)
        row = rows.get(b)
        if row is None:
            row = rows[b] = [0, 0, 0, []]
        if out == OK:
            row[0] += 1
            row[3].append(lat)
        elif out == ERROR:
            row[1] += 1
        else:
            row[2] += 1
    series = []
    for b in range(max(rows) + 1):
        ok, errors, fails, lats = rows.get(b, (0, 0, 0, []))
        hist = LatencyHistogram()
        hist.record_many(lats)
        series.append(
            {
                "t": b * bucket_s,
                "ok": ok,
                "errors": errors,
                "fails": fails,
                "throughput": ok / bucket_s,
                "p50_ms": hist.percentile(50) if hist.count else None,
                "p99_ms": hist.percentile(99) if hist.count else None,
            }
        )
    return series
