"""The history of a run, indexed once and shared by every checker of the run.

History lines follow docs/contracts.md §6. Evidence refers to a line by its 0-based
position in the history (= line number - 1 of ``history.jsonl``, blank lines skipped).
The index itself (one pass, columns only) is ``_index.py``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from ._index import (
    ERROR,
    EXPECTED_FAIL,
    F64,
    FIELDS,
    KEYED_FUNCTIONS,
    OK,
    HistoryIndex,
    IndexBuilder,
    body_hash,
    body_value,
    kept_body,
)
from ._result import CheckContext
from ._source import ListRecords, RecordSource
from ._windows import FaultWindow, fault_windows_from_history, is_error

__all__ = [
    "ERROR",
    "EXPECTED_FAIL",
    "KEYED_FUNCTIONS",
    "OK",
    "FaultWindow",
    "HistoryIndex",
    "body_hash",
    "body_value",
    "context_windows",
    "fault_windows_from_history",
    "history_index",
    "history_source",
    "is_error",
    "kept_body",
    "ops_by_start",
]

def history_source(history: Any) -> RecordSource:
    """A record source for a history given as a list of dicts or as a source."""
    return history if isinstance(history, RecordSource) else ListRecords(history, "history")


def history_index(history: Any, ctx: CheckContext) -> HistoryIndex:
    """The run's :class:`HistoryIndex`, built once and cached in ``ctx.cache``."""
    cached = ctx.cache.get("history_index")
    if cached is None or cached[0] is not history:
        builder = IndexBuilder(history_source(history))
        for chunk in builder.source.chunks(FIELDS):
            builder.chunk(chunk)
        cached = (history, builder.finish())
        ctx.cache["history_index"] = cached
    ix: HistoryIndex = cached[1]
    return ix


def context_windows(history: Any, ctx: CheckContext) -> list[FaultWindow]:
    """Fault windows from the context, else from the history's nemesis lines."""
    if ctx.fault_windows:
        return [w if isinstance(w, FaultWindow) else FaultWindow(**w) for w in ctx.fault_windows]
    cached = ctx.cache.get("fault_windows")
    if cached is None or cached[0] is not history:
        ix = history_index(history, ctx)
        cached = (history, fault_windows_from_history([op for _, op in ix.nemesis]))
        ctx.cache["fault_windows"] = cached
    windows: list[FaultWindow] = cached[1]
    return windows


def ops_by_start(history: Any, ctx: CheckContext) -> tuple[F64, F64, npt.NDArray[np.int8]]:
    """``(start_ns, latency_ms, outcome)`` of completed operations sorted by start.

    Histories are written in completion order; sorting by invoke time lets phases and
    per-second buckets be cut with bisection.
    """
    cached = ctx.cache.get("ops_by_start")
    if cached is not None and cached[0] is history:
        return cached[1]  # type: ignore[no-any-return]
    ix = history_index(history, ctx)
    starts, lats, outs = ix.start_ns, ix.latency_ms, ix.outcome
    if len(starts) > 1 and not bool(np.all(starts[1:] >= starts[:-1])):
        order = np.argsort(starts, kind="stable")
        starts, lats, outs = starts[order], lats[order], outs[order]
    value = (starts, lats, outs)
    ctx.cache["ops_by_start"] = (history, value)
    return value
