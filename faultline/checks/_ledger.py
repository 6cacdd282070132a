"""Ledger invariants: money is conserved, entries balance, no forbidden overdraft."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from operator import itemgetter
from typing import Any

from ._registry import checker
from ._result import CheckContext, CheckResult, ErrorCollector

__all__ = ["balanced_entries", "conservation", "non_negative"]

#: transfer statuses that never move money (all others are committed)
NOT_COMMITTED = frozenset({"declined", "rejected", "failed", "cancelled"})


def _entry_sums(
    state: Mapping[str, Any], ctx: CheckContext
) -> tuple[dict[Any, int], dict[Any, int], dict[Any, str], set[Any]]:
    """(balance by account, sum by transfer, currency of each transfer's entries,
    transfers whose entries mix currencies) — cached for the run."""
    cached = ctx.cache.get("entry_sums")
    if cached is not None and cached[0] is state:
        return cached[1]  # type: ignore[no-any-return]
    by_account: dict[Any, int] = {}
    by_transfer: dict[Any, int] = {}
    currency_of: dict[Any, str] = {}
    mixed: set[Any] = set()
    acc_get, tr_get, cur_set = by_account.get, by_transfer.get, currency_of.setdefault
    fields = itemgetter("account_id", "transfer_id", "amount", "currency")
    for acc, tid, amount, cur in map(fields, state.get("entries", ())):
        by_account[acc] = acc_get(acc, 0) + amount
        by_transfer[tid] = tr_get(tid, 0) + amount
        if cur_set(tid, cur) != cur:
            mixed.add(tid)
    value = (by_account, by_transfer, currency_of, mixed)
    ctx.cache["entry_sums"] = (state, value)
    return value


def _entries_of(state: Mapping[str, Any], transfer_ids: set[Any]) -> dict[Any, list[dict[str, Any]]]:
    """The entry rows of a few transfers (only ever called for evidence)."""
    out: dict[Any, list[dict[str, Any]]] = {}
    for e in state.get("entries", ()):
        if e["transfer_id"] in transfer_ids:
            out.setdefault(e["transfer_id"], []).append(e)
    return out


@checker("conservation")
def conservation(
    history: Sequence[Mapping[str, Any]], state: Mapping[str, Any], ctx: CheckContext
) -> CheckResult:
    """Per currency all balances sum to zero, and each balance equals its entries.

    Money enters only out of ``issuance`` accounts, so customer balances sum to what
    issuance accounts gave out; ``external_inflow`` (when non-zero) must equal it.
    """
    by_account = _entry_sums(state, ctx)[0]
    errors = ErrorCollector()
    totals: dict[str, int] = defaultdict(int)
    issued: dict[str, int] = defaultdict(int)
    accounts = state.get("accounts", ())
    for acc in accounts:
        cur, bal = acc["currency"], acc["balance"]
        totals[cur] += bal
        if acc.get("kind") == "issuance":
            issued[cur] -= bal
        from_entries = by_account.get(acc["id"], 0)
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
    for cur, inflow in sorted((state.get("external_inflow") or {}).items()):
        if inflow and cur in issued and inflow != issued[cur]:
            errors.add(
                "inflow_mismatch",
                {"currency": cur, "external_inflow": inflow, "issued": issued[cur]},
                severity=abs(inflow - issued[cur]),
            )
    counts = {"accounts": len(accounts), "currencies": len(totals), "totals": dict(totals)}
    return errors.result("conservation", counts)


@checker("balanced_entries")
def balanced_entries(
    history: Sequence[Mapping[str, Any]], state: Mapping[str, Any], ctx: CheckContext
) -> CheckResult:
    """Every transfer's entries sum to zero per currency, in the transfer's currency;
    committed transfers have entries, uncommitted ones none, no entry is orphaned."""
    _, by_transfer, currency_of, mixed = _entry_sums(state, ctx)
    transfers = state.get("transfers", ())
    problems: dict[Any, list[str]] = {}
    currency: dict[Any, Any] = {}
    for tid, status, cur in map(itemgetter("id", "status", "currency"), transfers):
        currency[tid] = cur
        total = by_transfer.get(tid)
        if total is None:
            if status not in NOT_COMMITTED:
                problems[tid] = ["missing_entries"]
            continue
        if total != 0 or status in NOT_COMMITTED or tid in mixed or currency_of[tid] != cur:
            kinds = problems[tid] = []
            if status in NOT_COMMITTED:
                kinds.append("entries_of_uncommitted_transfer")
            if tid in mixed or currency_of[tid] != cur:
                kinds.append("currency_mismatch")
            if total != 0 and tid not in mixed:
                kinds.append("unbalanced_entries")
    for tid in by_transfer.keys() - currency.keys():
        problems[tid] = ["orphan_entries"]
    errors = ErrorCollector()
    if problems:
        entries = _entries_of(state, set(problems))
        for tid, kinds in problems.items():
            rows = entries.get(tid, [])
            sums: dict[str, int] = {}
            for e in rows:
                sums[e["currency"]] = sums.get(e["currency"], 0) + e["amount"]
            if tid in mixed and any(sums.values()):
                kinds.append("unbalanced_entries")
            for kind in kinds:
                errors.add(
                    kind,
                    {"transfer": tid, "currency": currency.get(tid), "entry_sums": sums},
                    severity=sum(abs(v) for v in sums.values()),
                    rows={
                        "transfers": [tid] if tid in currency else [],
                        "entries": [e["id"] for e in rows],
                    },
                )
    counts = {"transfers": len(transfers), "entries": len(state.get("entries", ()))}
    return errors.result("balanced_entries", counts)


@checker("non_negative")
def non_negative(
    history: Sequence[Mapping[str, Any]], state: Mapping[str, Any], ctx: CheckContext
) -> CheckResult:
    """No account marked ``non_negative`` has a balance below zero."""
    errors = ErrorCollector()
    guarded = 0
    for acc in state.get("accounts", ()):
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
