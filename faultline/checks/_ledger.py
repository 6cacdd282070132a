"""Ledger invariants: money is conserved, entries balance, no forbidden overdraft."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from itertools import compress
from operator import itemgetter
from typing import Any

from ._registry import checker
from ._result import CheckContext, CheckResult, ErrorCollector
from ._snapshot import NOT_COMMITTED, all_committed, transfer_column, transfer_ids

__all__ = ["balanced_entries", "conservation", "non_negative"]

#: the transfer (and currency) "before" the first entry of the ledger
_NOTHING = object()
#: the fields of a ledger entry the checkers read
_ENTRY = itemgetter("account_id", "transfer_id", "amount", "currency")


def _walk_entries(
    rows: Iterable[tuple[Any, Any, Any, Any]],
) -> tuple[dict[Any, Any], list[Any], list[Any], set[Any]]:
    """(balance by account, the transfer of each run of adjacent entries, each run's
    sum, the distinct currencies) of ``(account, transfer, amount, currency)`` rows."""
    by_account: dict[Any, Any] = {}
    runs: list[Any] = []
    run_sums: list[Any] = []  # shifted by one: the first is a dummy
    run_append, sum_append = runs.append, run_sums.append
    currencies: set[Any] = set()
    run_tid: Any = _NOTHING
    last_currency: Any = _NOTHING
    total: Any = 0
    for acc, tid, amount, currency in rows:
        try:
            by_account[acc] = by_account[acc] + amount
        except KeyError:  # the account's first entry
            by_account[acc] = 0 + amount
        if tid == run_tid:
            total += amount
        else:
            sum_append(total)
            run_append(tid)
            run_tid, total = tid, amount
        if currency != last_currency:
            currencies.add(currency)
            last_currency = currency
    sum_append(total)
    del run_sums[0]
    return by_account, runs, run_sums, currencies


def _entry_sums(
    state: Mapping[str, Any], ctx: CheckContext
) -> tuple[dict[Any, int], set[Any], list[Any], set[tuple[Any, str]] | None]:
    """(balance by account, transfers with entries, transfers whose entries do not sum
    to zero in ledger order, distinct (transfer, currency) of entries or ``None`` when
    the whole ledger has one currency), cached for the run.

    The one Python loop over every entry of the ledger. A transfer's entries are
    written together and so mostly sit side by side: the loop sums runs of one
    transfer, and a dict by transfer (a dearer insert per entry) is only built when
    some transfer's entries are apart.
    """
    cached = ctx.cache.get("entry_sums")
    if cached is not None and cached[0] is state:
        return cached[1]  # type: ignore[no-any-return]
    entries = state.get("entries", ())
    try:
        by_account, runs, run_sums, currencies = _walk_entries(map(_ENTRY, entries))
    except Exception:
        # a malformed entry: fail on the row and field that the former two passes (the
        # sums, then the currencies) have always failed on
        sums_only = itemgetter("account_id", "transfer_id", "amount")
        _walk_entries((*row, None) for row in map(sums_only, entries))
        set(map(itemgetter("currency"), entries))
        raise
    with_entries = set(runs)
    if len(with_entries) == len(runs):  # one run per transfer
        unbalanced = list(compress(runs, run_sums))
    else:
        by_transfer: dict[Any, Any] = {}
        tr_get = by_transfer.get
        for tid, total in zip(runs, run_sums, strict=True):
            by_transfer[tid] = tr_get(tid, 0) + total
        unbalanced = [tid for tid, total in by_transfer.items() if total]
    pairs: set[tuple[Any, str]] | None = None
    if len(currencies) > 1:
        pairs = set(map(itemgetter("transfer_id", "currency"), entries))
    value = (by_account, with_entries, unbalanced, pairs)
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
    _, with_entries, unbalanced, pairs = _entry_sums(state, ctx)
    transfers = state.get("transfers", ())
    ids = transfer_ids(state, ctx)
    uncommitted = (
        set()
        if all_committed(state, ctx)
        else {t["id"] for t in transfers if t.get("status") in NOT_COMMITTED}
    )
    problems: dict[Any, list[str]] = {}

    def flag(tids: Iterable[Any], kind: str) -> None:
        for tid in tids:
            problems.setdefault(tid, []).append(kind)

    # set algebra first; Python-level work only for the transfers that are wrong
    without_entries = ids - with_entries
    flag(without_entries - uncommitted, "missing_entries")
    flag(uncommitted & with_entries, "entries_of_uncommitted_transfer")
    # |with - ids| = |with| - |ids| + |ids - with|: walk the entries' side only if needed
    if len(with_entries) - len(ids) + len(without_entries):
        flag(with_entries - ids, "orphan_entries")
    if pairs is None:  # one currency in all entries: compare it with the transfers'
        entry_currencies = {e["currency"] for e in state.get("entries", ())[:1]}
        if not entry_currencies.issuperset(transfer_column(state, ctx, "currency")):
            pairs = set(map(itemgetter("transfer_id", "currency"), state.get("entries", ())))
    if pairs is not None:
        wrong_currency = pairs - set(map(itemgetter("id", "currency"), transfers))
        flag({tid for tid, _ in wrong_currency if tid in ids}, "currency_mismatch")
    flag(unbalanced, "unbalanced_entries")
    currency = (
        {t["id"]: t["currency"] for t in transfers if t["id"] in problems} if problems else {}
    )
    errors = ErrorCollector()
    if problems:
        entries = _entries_of(state, set(problems))
        for tid, kinds in problems.items():
            rows = entries.get(tid, [])
            sums: dict[str, int] = {}
            for e in rows:
                sums[e["currency"]] = sums.get(e["currency"], 0) + e["amount"]
            if "unbalanced_entries" not in kinds and any(sums.values()):
                kinds.append("unbalanced_entries")  # mixed currencies, zero in total
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
