"""Ledger invariants: money is conserved, entries balance, no forbidden overdraft."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from ._columns import Codes, first_appearance, group_sums, group_totals, in_sorted, isin, lookup
from ._registry import checker
from ._result import CheckContext, CheckResult, ErrorCollector, Example
from ._snapshot import state_source, table

__all__ = ["balanced_entries", "conservation", "non_negative"]


def _entry_columns(state: Any, ctx: CheckContext) -> tuple[Codes, Codes, Any, Codes]:
    """(account, transfer, amount, currency) of the entries, read in the order the
    former checkers read them, so a malformed entry fails on the same field."""
    entries = table(state, ctx, "entries")
    acc, tid, amount = entries.col("account_id"), entries.col("transfer_id"), entries.col("amount")
    return acc, tid, amount, entries.col("currency")


def _balances(state: Any, ctx: CheckContext) -> tuple[Codes, list[int]]:
    cached = ctx.cache.get("entry_balances")
    if cached is not None and cached[0] is state:
        return cached[1]  # type: ignore[no-any-return]
    acc, _, amount, _ = _entry_columns(state, ctx)
    value = group_sums(acc, amount)
    ctx.cache["entry_balances"] = (state, value)
    return value


@checker("conservation")
def conservation(history: Any, state: Any, ctx: CheckContext) -> CheckResult:
    """Per currency all balances sum to zero, and each balance equals its entries.

    Money enters only out of ``issuance`` accounts, so customer balances sum to what
    issuance accounts gave out; ``external_inflow`` (when non-zero) must equal it.
    """
    src = state_source(state, ctx)
    acc_keys, acc_sums = _balances(state, ctx)
    errors = ErrorCollector()
    totals: dict[str, int] = defaultdict(int)
    issued: dict[str, int] = defaultdict(int)
    accounts = src.rows("accounts")
    for acc in accounts:
        cur, bal = acc["currency"], acc["balance"]
        totals[cur] += bal
        if acc.get("kind") == "issuance":
            issued[cur] -= bal
        [from_entries] = lookup(acc_keys, acc_sums, np.array([hash(acc["id"])], np.int64), 0)
        if bal != from_entries:
            errors.add(
                "balance_entries_mismatch",
                {"account": acc["id"], "balance": bal, "entries_sum": from_entries},
                severity=abs(bal - from_entries),
                rows={"accounts": [acc["id"]]},
            )
    for cur, total in sorted(totals.items()):
        if total != 0:
            errors.add(
                "currency_not_conserved",
                {"currency": cur, "sum_of_balances": total},
                severity=abs(total),
            )
    for cur, inflow in sorted((src.get("external_inflow") or {}).items()):
        if inflow and cur in issued and inflow != issued[cur]:
            errors.add(
                "inflow_mismatch",
                {"currency": cur, "external_inflow": inflow, "issued": issued[cur]},
                severity=abs(inflow - issued[cur]),
            )
    counts = {"accounts": len(accounts), "currencies": len(totals), "totals": dict(totals)}
    return errors.result("conservation", counts)


_KINDS = ("missing_entries", "entries_of_uncommitted_transfer", "orphan_entries",
          "currency_mismatch", "unbalanced_entries")
#: the tables each kind's evidence can show rows of (a superset is only slower)
_SHAPES = {
    "missing_entries": (False, ("transfers",)),
    "entries_of_uncommitted_transfer": (False, ("transfers", "entries")),
    "orphan_entries": (False, ("entries",)),
    "currency_mismatch": (False, ("transfers", "entries")),
    "unbalanced_entries": (False, ("transfers", "entries")),
}


def _pair_sums(tid: Codes, cur: Codes, amount: Any, wanted: Codes) -> tuple[Codes, list[int]]:
    """Per transfer of ``wanted``: (whether some currency's entries sum to non-zero,
    the sum of the absolute per-currency sums) in the order of ``wanted``."""
    keep = isin(tid, wanted)
    t, c, a = tid[keep], cur[keep], amount[keep]
    if not len(t):
        return np.zeros(len(wanted), bool), [0] * len(wanted)
    pair = np.stack([t, c], axis=1)
    uniq, inverse = np.unique(pair, axis=0, return_inverse=True)
    _, sums = group_sums(inverse.astype(np.int64).ravel(), a)
    per_tid: dict[int, int] = defaultdict(int)
    nonzero: set[int] = set()
    for (tc, _), s in zip(uniq.tolist(), sums, strict=True):
        per_tid[tc] += abs(s)
        if s:
            nonzero.add(tc)
    wanted_list = wanted.tolist()
    return (np.array([w in nonzero for w in wanted_list], bool),
            [per_tid.get(w, 0) for w in wanted_list])


class _EntryGroups:
    """The entries grouped by transfer, by one stable sort: ``tids`` (sorted, distinct),
    ``first`` (each one's first entry), ``group`` (of each entry in sorted order),
    ``nonzero`` (the entries' sum is not zero)."""

    def __init__(self, e_tid: Codes, amounts: Any) -> None:
        self.order = np.argsort(e_tid, kind="stable")
        st = e_tid[self.order]
        new = np.ones(len(st), bool)
        if len(st):
            np.not_equal(st[1:], st[:-1], out=new[1:])
        starts = np.flatnonzero(new)
        self.tids = st[starts]
        self.first = self.order[starts]
        self.group = np.cumsum(new) - 1
        sums = group_totals(amounts[self.order], starts)
        self.nonzero = np.fromiter(map(bool, sums), bool, count=len(starts))

    def in_ledger_order(self, mask: Any) -> Codes:
        """The transfers of ``mask`` in the order of their first entry."""
        return self.tids[mask][np.argsort(self.first[mask], kind="stable")]  # type: ignore[no-any-return]


@checker("balanced_entries")
def balanced_entries(history: Any, state: Any, ctx: CheckContext) -> CheckResult:
    """Every transfer's entries sum to zero per currency, in the transfer's currency;
    committed transfers have entries, uncommitted ones none, no entry is orphaned."""
    _, e_tid, e_amount, e_cur = _entry_columns(state, ctx)
    transfers = table(state, ctx, "transfers")
    entries = table(state, ctx, "entries")
    ids = transfers.col("id")
    uncommitted = transfers.col("uncommitted")
    t_cur = transfers.col("currency")
    g = _EntryGroups(e_tid, e_amount)
    # each group's transfer: ids sorted once, searched with the sorted group keys
    ot = np.argsort(ids, kind="stable")
    s_ids, s_cur = ids[ot], t_cur[ot]
    lo = np.searchsorted(s_ids, g.tids, "left")
    hi = np.searchsorted(s_ids, g.tids, "right")
    known = hi > lo
    has_entries = np.empty(len(ids), bool)
    has_entries[ot] = in_sorted(s_ids, g.tids)
    groups = [
        first_appearance(ids[~has_entries & ~uncommitted]),
        first_appearance(ids[has_entries & uncommitted]),
        g.in_ledger_order(~known),
    ]
    # entries in another currency than their transfer's (a transfer of ``ids`` only)
    span = hi - lo
    one = known & (span == 1)
    e_cur_sorted = e_cur[g.order]
    of_one = one[g.group]
    same = np.zeros(len(e_tid), bool)
    t_cur_of = s_cur[np.minimum(lo, max(len(s_cur) - 1, 0))] if len(s_cur) else lo
    same[of_one] = t_cur_of[g.group[of_one]] == e_cur_sorted[of_one]
    for k in np.flatnonzero(known & (span > 1)).tolist():  # a transfer id twice: rare
        rows = np.flatnonzero(g.group == k)
        same[rows] = np.isin(e_cur_sorted[rows], s_cur[lo[k]:hi[k]])
    bad = np.zeros(len(e_tid), bool)
    bad[g.order] = known[g.group] & ~same
    groups.append(first_appearance(e_tid[bad]))
    groups.append(g.in_ledger_order(g.nonzero))
    problems = first_appearance(np.concatenate(groups)) if any(len(g) for g in groups) else ids[:0]
    errors = ErrorCollector()
    if len(problems):
        member: list[Any] = [isin(problems, g) for g in groups]
        unbalanced_any, severity = _pair_sums(e_tid, e_cur, e_amount, problems)
        member[4] = member[4] | unbalanced_any  # mixed currencies that sum to zero overall
        kinds_of, tids, sev = [], [], []
        m = np.stack(member, axis=1)
        for i, row in enumerate(m.tolist()):
            for k, flagged in enumerate(row):
                if flagged:
                    kinds_of.append(k)
                    tids.append(i)
                    sev.append(severity[i])
        tid_index = np.array(tids, np.int64)
        errors.add_batch(_KINDS, kinds_of, _examples(problems, tid_index, e_tid, ids,
                                                       transfers, entries),
                         shapes=_SHAPES, severity=np.array(sev, dtype=np.float64))
    counts = {"transfers": len(transfers), "entries": len(entries)}
    return errors.result("balanced_entries", counts)


def _examples(problems: Codes, tid_index: Any, e_tid: Codes, ids: Codes, transfers: Any,
              entries: Any) -> Any:
    def materialize(positions: Any) -> list[Example]:
        wanted = problems[tid_index[positions]]
        e_pos = np.flatnonzero(isin(e_tid, wanted))
        t_pos = np.flatnonzero(isin(ids, wanted))
        e_rows = entries.rows_at(e_pos.tolist())
        t_rows = transfers.rows_at(t_pos.tolist())
        by_tid: dict[Any, list[dict[str, Any]]] = defaultdict(list)
        for p in e_pos.tolist():
            by_tid[hash(e_rows[p]["transfer_id"])].append(e_rows[p])
        currency: dict[int, tuple[Any, Any]] = {}
        for p in t_pos.tolist():
            row = t_rows[p]
            currency[hash(row["id"])] = (row["id"], row["currency"])
        out: list[Example] = []
        for code in wanted.tolist():
            rows = by_tid.get(code, [])
            sums: dict[str, int] = {}
            for e in rows:
                sums[e["currency"]] = sums.get(e["currency"], 0) + e["amount"]
            tid_value, cur = currency.get(code, (None, None))
            if tid_value is None:
                tid_value = rows[0]["transfer_id"]
            example = {"transfer": tid_value, "currency": cur, "entry_sums": sums}
            out.append((example, (), {"transfers": [tid_value] if code in currency else [],
                                      "entries": [e["id"] for e in rows]}))
        return out

    return materialize


@checker("non_negative")
def non_negative(history: Any, state: Any, ctx: CheckContext) -> CheckResult:
    """No account marked ``non_negative`` has a balance below zero."""
    errors = ErrorCollector()
    guarded = 0
    for acc in state_source(state, ctx).rows("accounts"):
        if not acc.get("non_negative"):
            continue
        guarded += 1
        if acc["balance"] < 0:
            errors.add(
                "negative_balance",
                {"account": acc["id"], "balance": acc["balance"]},
                severity=-acc["balance"],
                rows={"accounts": [acc["id"]]},
            )
    return errors.result("non_negative", {"guarded_accounts": guarded})
