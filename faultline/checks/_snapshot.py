"""Columns of the final-state snapshot's tables, read once per run and shared.

Each pass over a table of a million-operation run costs about as much as the check
that reads it (one cache miss per row), so the columns several checkers read come
from one pass, cached in ``ctx.cache``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from operator import itemgetter
from typing import Any

from ._result import CheckContext

__all__ = ["NOT_COMMITTED", "all_committed", "transfer_column", "transfer_ids"]

#: transfer statuses that never move money (all others are committed)
NOT_COMMITTED = frozenset({"declined", "rejected", "failed", "cancelled"})

#: the transfer columns the checkers read
_TRANSFER_COLUMNS = ("id", "status", "currency", "idempotency_key")


def transfer_column(state: Mapping[str, Any], ctx: CheckContext, name: str) -> Iterable[Any]:
    """Column ``name`` of the snapshot's transfers, in row order (do not mutate it).

    The columns the checkers read come from one pass over the table, cached. When a
    row lacks one of them (or is no row at all), every column is read lazily from the
    table instead, as the checkers always read it: a checker then fails, or stops
    early, exactly where it always has.
    """
    cached = ctx.cache.get("transfer_columns")
    if cached is None or cached[0] is not state:
        try:
            rows = list(map(itemgetter(*_TRANSFER_COLUMNS), state.get("transfers", ())))
        except Exception:
            columns: dict[str, list[Any]] = {}
        else:
            columns = {c: list(map(itemgetter(i), rows)) for i, c in enumerate(_TRANSFER_COLUMNS)}
        cached = (state, columns)
        ctx.cache["transfer_columns"] = cached
    column = cached[1].get(name)
    return column if column is not None else map(itemgetter(name), state.get("transfers", ()))


def transfer_ids(state: Mapping[str, Any], ctx: CheckContext) -> set[Any]:
    """The ids of every transfer in the snapshot, cached for the run."""
    cached = ctx.cache.get("transfer_ids")
    if cached is not None and cached[0] is state:
        return cached[1]  # type: ignore[no-any-return]
    ids = set(transfer_column(state, ctx, "id"))
    ctx.cache["transfer_ids"] = (state, ids)
    return ids


def all_committed(state: Mapping[str, Any], ctx: CheckContext) -> bool:
    """No transfer of the snapshot has a status that never moves money (cached)."""
    cached = ctx.cache.get("all_committed")
    if cached is not None and cached[0] is state:
        return cached[1]  # type: ignore[no-any-return]
    value = NOT_COMMITTED.isdisjoint(transfer_column(state, ctx, "status"))
    ctx.cache["all_committed"] = (state, value)
    return value
