"""The final-state snapshot as the checkers read it: tables of columns, read once.

A snapshot is a dict of row lists (the in-memory API, and the former single-file
``final_state.json``) or a directory of one JSON-lines file per table (``_state.py``).
Either way each big table is read in one pass for every column any checker needs, and
kept as integer-coded columns in ``ctx.cache``. A column some row lacks is kept as
"absent": the checker that reads it fails on it (``KeyError``, so ``unknown``) and the
others are not touched, as when each checker read the rows itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from itertools import repeat
from operator import is_not
from typing import Any

import numpy as np

from ._columns import MISSING, float_column, int_column
from ._index import body_hashes
from ._result import CheckContext
from ._source import Chunk, ListRecords, RecordSource

__all__ = [
    "NOT_COMMITTED",
    "StateSource",
    "TableColumns",
    "state_source",
    "table",
    "table_key",
]

#: transfer statuses that never move money (all others are committed)
NOT_COMMITTED = frozenset({"declined", "rejected", "failed", "cancelled"})

#: per big table, the fields read ("?": absent reads as None) and how (see _convert); the
#: column is named after the field, except "uncommitted" (the status, as a flag)
_SPEC: dict[str, dict[str, str]] = {
    "transfers": {"id": "code", "idempotency_key": "code", "currency": "code",
                  "status?": "uncommitted"},
    "entries": {"account_id": "code", "transfer_id": "code", "amount": "int", "currency": "code"},
    "outbox": {"transfer_id": "code", "event_id": "code", "published_at?": "present"},
    "stream": {"event_id": "code"},
    "processed_events": {"event_id": "code"},
    "dead_letters": {"event_id?": "code"},
    "idempotency": {"key": "code", "state": "done", "status_code?": "float",
                    "response_body": "body"},
}


class StateSource:
    """Tables (record sources) and the snapshot's other values (``external_inflow``)."""

    def __init__(self, tables: Mapping[str, RecordSource], meta: Mapping[str, Any]) -> None:
        self.tables = dict(tables)
        self.meta = dict(meta)

    def __contains__(self, name: object) -> bool:
        return name in self.tables or name in self.meta

    def get(self, name: str, default: Any = None) -> Any:
        """A non-table value (``external_inflow``)."""
        return self.meta.get(name, default)

    def rows(self, name: str) -> list[dict[str, Any]]:
        """Every row of a small table (accounts, projections) as dicts."""
        source = self.tables.get(name)
        if source is None:
            return []
        if isinstance(source, ListRecords):
            return list(source.rows)  # type: ignore[arg-type]
        return list(source.rows_at(range(len(source))).values())

    @classmethod
    def from_dict(cls, state: Mapping[str, Any]) -> StateSource:
        tables = {k: ListRecords(v, k) for k, v in state.items() if isinstance(v, list)}
        meta = {k: v for k, v in state.items() if not isinstance(v, list)}
        return cls(tables, meta)


def state_source(state: Any, ctx: CheckContext) -> StateSource:
    """``state`` as a :class:`StateSource` (a dict is wrapped once per run)."""
    if isinstance(state, StateSource):
        return state
    cached = ctx.cache.get("state_source")
    if cached is None or cached[0] is not state:
        cached = (state, StateSource.from_dict(state))
        ctx.cache["state_source"] = cached
    source: StateSource = cached[1]
    return source


class TableColumns:
    """The columns of one table. ``col(name)`` raises ``KeyError(name)`` when some row
    lacked the field, or the error a malformed value gave, as reading it always did."""

    def __init__(self, source: RecordSource | None, columns: dict[str, Any],
                 failures: dict[str, Exception], length: int) -> None:
        self.source = source
        self._columns = columns
        self._failures = failures
        self.length = length

    def col(self, name: str) -> Any:
        failure = self._failures.get(name)
        if failure is not None:
            raise failure
        return self._columns[name]

    def __len__(self) -> int:
        return self.length

    def rows_at(self, positions: Iterable[int]) -> dict[int, dict[str, Any]]:
        """The whole rows at these positions (for error examples)."""
        if self.source is None:
            return {}
        return self.source.rows_at(positions)


def _convert(kind: str, name: str, chunk: Chunk, required: bool) -> Any:
    if kind == "code":
        return chunk.codes(name, required=required)
    if kind == "int":
        values = chunk[name]
        if required and values.count(MISSING):
            raise KeyError(name)
        return int_column(values, name)
    if kind == "uncommitted":
        return np.fromiter(map(NOT_COMMITTED.__contains__, chunk.iter(name)), bool, count=chunk.n)
    if kind == "present":
        return np.fromiter(map(is_not, chunk.iter(name), repeat(None)), bool, count=chunk.n)
    if kind == "done":  # an idempotency row without a state counts as done
        return np.fromiter(map(_done, chunk.iter(name)), bool, count=chunk.n)
    if kind == "float":
        return float_column(chunk[name])
    if kind == "body":  # a stored answer's body: equal hashes are equal answers
        return body_hashes(chunk[name], raw=chunk.raw)
    raise ValueError(kind)



def _done(state: Any) -> bool:
    return state is MISSING or state == "done"


_DTYPES: dict[str, Any] = {"uncommitted": bool, "present": bool, "done": bool, "float": np.float64}


def _out(field: str, kind: str) -> str:
    return "uncommitted" if kind == "uncommitted" else field.rstrip("?")


class _Growing:
    """A column filled chunk by chunk: into one array of the expected length (no copy
    at the end), or, past it, into parts joined at the end."""

    def __init__(self, expected: int | None, dtype: Any) -> None:
        self.array = np.empty(expected, dtype) if expected is not None else None
        self.parts: list[Any] = []
        self.n = 0

    def add(self, values: Any) -> None:
        k = len(values)
        if self.array is not None and self.n + k <= len(self.array):
            self.array[self.n : self.n + k] = values
        else:
            if self.array is not None:
                self.parts.append(self.array[: self.n])
                self.array = None
            self.parts.append(values)
        self.n += k

    def result(self) -> Any:
        if self.array is not None:
            return self.array[: self.n]
        return np.concatenate(self.parts) if self.parts else np.zeros(0, np.int64)


def _read(source: RecordSource, spec: Mapping[str, str]) -> TableColumns:
    expected = source.known_length()
    parts = {_out(f, k): _Growing(expected, _DTYPES.get(k, np.int64)) for f, k in spec.items()}
    failures: dict[str, Exception] = {}
    n = 0
    for chunk in source.chunks(list(spec)):
        n += chunk.n
        for field, kind in spec.items():
            name, out = field.rstrip("?"), _out(field, kind)
            if out in failures:
                continue
            try:
                parts[out].add(_convert(kind, name, chunk, not field.endswith("?")))
            except (KeyError, TypeError, ValueError, OverflowError) as exc:
                failures[out] = exc
    columns = {name: col.result() for name, col in parts.items() if name not in failures}
    return TableColumns(source, columns, failures, n)


def table_key(state: Any, name: str) -> str:
    """The ``ctx.cache`` key of a table's columns (the baseline's beside the final's)."""
    return f"table:{name}:{id(state)}"


def table(state: Any, ctx: CheckContext, name: str) -> TableColumns:
    """The columns of table ``name`` (an empty table when the snapshot has none)."""
    key = table_key(state, name)
    cached = ctx.cache.get(key)
    if cached is not None and cached[0] is state:
        return cached[1]  # type: ignore[no-any-return]
    source = state_source(state, ctx).tables.get(name)
    spec = _SPEC[name]
    if source is None:
        empty = {_out(f, k): np.zeros(0, _DTYPES.get(k, np.int64)) for f, k in spec.items()}
        cols = TableColumns(None, empty, {}, 0)
    else:
        cols = _read(source, spec)
    ctx.cache[key] = (state, cols)
    return cols
