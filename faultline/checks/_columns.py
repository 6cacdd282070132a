"""Integer-coded columns: what a run's history and snapshot shrink to while checked.

A million-operation run held as dicts costs ~3 KB per operation; as columns it costs a
few dozen bytes. Every identifier (idempotency key, transfer id, event id, process
name...) becomes a 64-bit *code*: Python's ``hash`` of the value, which is SipHash-1-3
keyed afresh in every process for strings, and equal for values Python finds equal
(``1 == 1.0``), as the dicts and sets of the former checkers did. Two distinct
identifiers share a code with probability ~n²/2⁶⁵ (about 10⁻⁶ for the six million keys
of a ten-million-operation run, drawn anew in each process); DESIGN.md's oracle rule
accepts that bound, documented in docs/checks.md.

``numpy`` (sort-based set algebra on int64, vectorized pairing, exact per-group sums)
and ``msgspec`` (typed JSON-lines decoding, 5x orjson on history lines, unknown fields
skipped without allocation) are what make ten million operations fit in a minute and a
few gigabytes; benchmarks/checkers.py measures both against the alternatives.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import pairwise
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt

__all__ = [
    "MISSING",
    "NONE_CODE",
    "Codes",
    "Members",
    "first_appearance",
    "first_index",
    "float_column",
    "group_sums",
    "group_totals",
    "in_sorted",
    "int_column",
    "intersect",
    "isin",
    "lookup",
    "require",
    "setdiff",
    "small_codes",
    "union",
    "uniq",
]

#: a field absent from a row (``None`` is a present null)
MISSING: Any = msgspec.UNSET
#: the code of ``None``
NONE_CODE = hash(None)

Codes = npt.NDArray[np.int64]


def require(values: Sequence[Any], field: str) -> Sequence[Any]:
    """``values`` unless a row lacked ``field``: then ``KeyError(field)``, as reading
    that row's field always failed (the checker that reads it is ``unknown``)."""
    for v in values:
        if v is MISSING:
            raise KeyError(field)
    return values


def int_column(values: Sequence[Any], field: str) -> npt.NDArray[np.int64]:
    """Integers as int64; anything else (floats, text, null, beyond 64 bits) is refused
    with a message that names ``field``, so its checker is ``unknown``, not wrong."""
    arr = np.array(values) if len(values) else np.zeros(0, dtype=np.int64)
    if arr.dtype.kind != "i":
        bad = next((v for v in values if not isinstance(v, int)), None)
        if bad is None:
            raise OverflowError(f"{field}: an integer beyond 64 bits")
        raise TypeError(f"{field}: {bad!r} is not an integer")
    return arr.astype(np.int64, copy=False)


def float_column(values: Sequence[Any]) -> npt.NDArray[np.float64]:
    """Numbers as float64, ``None`` and absent as NaN."""
    if not len(values):
        return np.zeros(0, dtype=np.float64)
    try:
        return np.array(values, dtype=np.float64)
    except (TypeError, ValueError):
        return np.array([np.nan if v is None or v is MISSING else v for v in values], dtype=np.float64)


def small_codes(values: Iterable[Any], table: dict[Any, int], *, other: int,
                count: int = -1) -> npt.NDArray[np.int8]:
    """Codes of a column with a few known values (``type``, ``f``); the rest -> ``other``."""
    return np.fromiter(map(table.get, values, _repeat(other)), dtype=np.int8, count=count)


def _repeat(value: int) -> Iterable[int]:
    from itertools import repeat

    return repeat(value)


def in_sorted(values: Codes, sorted_set: Codes) -> npt.NDArray[np.bool_]:
    """Membership of each of ``values`` in the sorted array ``sorted_set``."""
    if not len(sorted_set):
        return np.zeros(len(values), dtype=bool)
    if len(values) > 1 << 15 and not bool(np.all(values[1:] >= values[:-1])):
        # sorted queries walk the table once; random ones miss the cache at every step
        order = np.argsort(values)
        hit = np.empty(len(values), dtype=bool)
        hit[order] = in_sorted(values[order], sorted_set)
        return hit
    pos = np.searchsorted(sorted_set, values)
    pos[pos == len(sorted_set)] = 0
    return sorted_set[pos] == values  # type: ignore[no-any-return]


def first_index(codes: Codes) -> tuple[Codes, npt.NDArray[np.intp]]:
    """(distinct codes sorted, the position of each one's first occurrence)."""
    uniq, first = np.unique(codes, return_index=True)
    return uniq, first


def _sums_fit(amounts: npt.NDArray[np.int64]) -> bool:
    """Can no partial sum of ``amounts`` leave int64?"""
    biggest = int(np.abs(amounts).max()) if len(amounts) else 0
    return biggest * len(amounts) < 2**62


def group_totals(amounts: npt.NDArray[np.int64], starts: npt.NDArray[np.intp]) -> list[int]:
    """Exact sums of the runs of ``amounts`` beginning at ``starts`` (sorted, first 0).

    int64 sums are exact while no partial sum can pass 2⁶³; beyond that they are taken
    in Python integers, as the former checkers always did.
    """
    if not len(starts):
        return []
    if _sums_fit(amounts):
        return np.add.reduceat(amounts, starts).tolist()  # type: ignore[no-any-return]
    bounds = [*starts.tolist(), len(amounts)]
    values = amounts.tolist()
    return [sum(values[a:b]) for a, b in pairwise(bounds)]


def group_sums(keys: Codes, amounts: npt.NDArray[np.int64]) -> tuple[Codes, list[int]]:
    """(distinct keys sorted, the exact sum of ``amounts`` per key as Python ints)."""
    if not len(keys):
        return keys[:0], []
    keys_sorted = uniq(keys)
    if len(keys_sorted) <= 1 << 16 and _sums_fit(amounts):
        # few keys (accounts): the table stays in cache, and no sort of the rows
        sums = np.zeros(len(keys_sorted), np.int64)
        np.add.at(sums, np.searchsorted(keys_sorted, keys), amounts)
        return keys_sorted, sums.tolist()
    order = np.argsort(keys, kind="stable")
    ordered = keys[order]
    new = np.ones(len(ordered), bool)
    np.not_equal(ordered[1:], ordered[:-1], out=new[1:])
    return keys_sorted, group_totals(amounts[order], np.flatnonzero(new))


def lookup(sorted_keys: Codes, values: Sequence[Any], wanted: Codes, default: Any) -> list[Any]:
    """``values[i]`` where ``sorted_keys[i] == w`` for each ``w`` of ``wanted``, else default."""
    if not len(sorted_keys):
        return [default] * len(wanted)
    pos = np.searchsorted(sorted_keys, wanted)
    pos[pos == len(sorted_keys)] = 0
    hit = sorted_keys[pos] == wanted
    return [values[p] if h else default for p, h in zip(pos.tolist(), hit.tolist(), strict=True)]


def first_appearance(codes: Codes) -> Codes:
    """The distinct codes in the order of their first occurrence."""
    uniq, first = np.unique(codes, return_index=True)
    return uniq[np.argsort(first, kind="stable")]


def uniq(codes: Codes) -> Codes:
    """The distinct codes, sorted."""
    s = np.sort(codes)
    if len(s) < 2:
        return s
    keep = np.empty(len(s), bool)
    keep[0] = True
    np.not_equal(s[1:], s[:-1], out=keep[1:])
    return s[keep]


def setdiff(a: Codes, b: Codes) -> Codes:
    """The codes of sorted distinct ``a`` that are not in sorted distinct ``b``."""
    return a[~in_sorted(a, b)]


def intersect(a: Codes, b: Codes) -> Codes:
    """The codes of sorted distinct ``a`` that are in sorted distinct ``b``."""
    return a[in_sorted(a, b)]


def union(a: Codes, b: Codes) -> Codes:
    """The codes of either, sorted and distinct."""
    return uniq(np.concatenate([a, b]))


def isin(values: Codes, members: Codes) -> npt.NDArray[np.bool_]:
    """``np.isin`` by sorting ``members`` (numpy's own hashes them: far slower)."""
    return in_sorted(values, uniq(members))


class Members:
    """Membership tests of one column against several sets, sorting the column once
    (a membership test of unsorted values is a sort of them and a merge)."""

    def __init__(self, values: Codes) -> None:
        self.order = np.argsort(values)
        self.sorted = values[self.order]

    def of(self, members: Codes) -> npt.NDArray[np.bool_]:
        """Which values are among ``members`` (any order, repeats allowed)."""
        hit = np.empty(len(self.sorted), dtype=bool)
        hit[self.order] = in_sorted(self.sorted, uniq(members))
        return hit
