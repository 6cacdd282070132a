"""Ledger invariants: money is conserved, entries balance, no forbidden overdraft."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from ._registry import checker
from ._result import CheckContext, CheckResult, ErrorCollector

__all__ = ["balanced_entries", "conservation", "non_negative"]

#: transfer statuses that never move money (all others are committed)
NOT_COMMITTED = frozenset({"declined", "rejected", "failed", "cancelled"})


def _entry_sums(state: Mapping[str, Any], ctx: CheckContext) -> tuple[
    dict[Any, int], dict[Any, dict[str, int]], dict[Any, list[Any]]
]:
    """(balance by account, {transfer: {currency: sum}}, entry ids by transfer), cached."""
    cached = ctx.cache.get("entry_sums")
    if cached is not None and cached[0] is state:
        return cached[1]  # type: ignore[no-any-return]
    by_account: dict[Any, int] = defaultdict(int)
    by_transfer: dict[Any, dict[str, int]] = {}
    ids: dict[Any, list[Any]] = {}
    for e in state.get("entries", ()):
        amount = e["amount"]
        by_account[e["account_id"]] += amount
        tid = e["transfer_id"]
        sums = by_transfer.get(tid)
        if sums is None:
            by_transfer[tid] = {e["currency"]: amount}
            ids[tid] = [e["id"]]
        else:
            cur = e["currency"]
            sums[cur] = sums.get(cur, 0) + amount
            ids[tid].append(e["id"])
    value = (dict(by_account), by_transfer, ids)
    ctx.cache["entry_sums"] = (state, value)
    return value


@checker("conservation")
def conservation(
    history: Sequence[Mapping[str, Any]], state: Mapping[str, Any], ctx: CheckContext
) -> CheckResult:
    """Per currency all balances sum to zero, and each balance equals its entries.

    Money enters only out of ``issuance`` accounts, so customer balances sum to what
    issuance accounts gave out; ``external_inflow`` (when non-zero) must equal it.
    """
    by_account, _, _ = _entry_sums(state, ctx)
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
    """Every transfer's entries sum to zero per currency and match the transfer."""
    _, by_transfer, entry_ids = _entry_sums(state, ctx)
    errors = ErrorCollector()
    transfers = state.get("transfers", ())
    seen: set[Any] = set()
    for tr in transfers:
        tid = tr["id"]
        seen.add(tid)
        sums = by_transfer.get(tid)
        committed = tr.get("status") not in NOT_COMMITTED
        if sums is None:
            if committed:
                errors.add("missing_entries", {"transfer": tid}, rows={"transfers": [tid]})
            continue
        if not committed:
            errors.add(
                "entries_of_uncommitted_transfer",
                {"transfer": tid, "status": tr.get("status")},
                rows={"transfers": [tid], "entries": entry_ids[tid]},
            )
        for cur, total in sums.items():
            if total != 0:
                errors.add(
                    "unbalanced_entries",
                    {"transfer": tid, "currency": cur, "sum": total},
                    severity=abs(total),
                    rows={"transfers": [tid], "entries": entry_ids[tid]},
                )
        if tr.get("currency") not in sums or len(sums) != 1:
            errors.add(
                "currency_mismatch",
                {"transfer": tid, "currency": tr.get("currency"), "entries": sorted(sums)},
                rows={"transfers": [tid], "entries": entry_ids[tid]},
            )
    orphans = [tid for tid in by_transfer if tid not in seen]
    for tid in orphans:
        errors.add("orphan_entries", {"transfer": tid}, rows={"entries": entry_ids[tid]})
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
