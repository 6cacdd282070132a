"""Events: transfer -> one outbox row -> the stream -> applied once -> projections."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from ._ledger import NOT_COMMITTED
from ._registry import checker
from ._result import CheckContext, CheckResult, ErrorCollector

__all__ = ["outbox_delivered", "projection_converges"]


@checker("outbox_delivered")
def outbox_delivered(
    history: Sequence[Mapping[str, Any]], state: Mapping[str, Any], ctx: CheckContext
) -> CheckResult:
    """Every committed transfer has exactly one outbox event, published to the stream
    and applied exactly once (``processed_events``). Dead letters are reported; one
    that was never applied is a violation."""
    errors = ErrorCollector()
    outbox = state.get("outbox", ())
    per_transfer = Counter(row["transfer_id"] for row in outbox)
    committed = 0
    duplicated: dict[Any, int] = {}
    for tr in state.get("transfers", ()):
        if tr.get("status") in NOT_COMMITTED:
            continue
        committed += 1
        tid = tr["id"]
        n = per_transfer.get(tid, 0)
        if n == 0:
            errors.add("missing_outbox_event", {"transfer": tid}, rows={"transfers": [tid]})
        elif n > 1:
            duplicated[tid] = n
    if duplicated:
        rows_of: dict[Any, list[Any]] = {}
        for row in outbox:
            if row["transfer_id"] in duplicated:
                rows_of.setdefault(row["transfer_id"], []).append(row["id"])
        for tid, n in duplicated.items():
            errors.add(
                "duplicate_outbox_event",
                {"transfer": tid, "events": n},
                severity=n,
                rows={"transfers": [tid], "outbox": rows_of[tid]},
            )
    in_stream = Counter(row["event_id"] for row in state.get("stream", ()))
    applied = Counter(row["event_id"] for row in state.get("processed_events", ()))
    dead = {row["event_id"]: row for row in state.get("dead_letters", ())}
    dead_applied = 0
    for row in outbox:
        event = row["event_id"]
        if event not in in_stream:
            kind = "unpublished_event" if row.get("published_at") is None else "event_not_in_stream"
            errors.add(kind, {"event": event, "transfer": row["transfer_id"]}, rows={"outbox": [row["id"]]})
            continue
        n = applied.get(event, 0)
        if n == 1:
            if event in dead:
                dead_applied += 1
            continue
        if n == 0:
            if event in dead:
                errors.add(
                    "dead_letter",
                    {"event": event, "reason": dead[event].get("reason")},
                    rows={"outbox": [row["id"]], "dead_letters": [dead[event].get("stream_id")]},
                )
            else:
                errors.add("event_not_applied", {"event": event}, rows={"outbox": [row["id"]]})
        else:
            errors.add(
                "double_apply",
                {"event": event, "applied": n},
                severity=n,
                rows={"outbox": [row["id"]], "processed_events": [event]},
            )
    counts = {
        "committed_transfers": committed,
        "outbox_events": len(outbox),
        "stream_entries": sum(in_stream.values()),
        "stream_redeliveries": sum(in_stream.values()) - len(in_stream),
        "applied_events": sum(applied.values()),
        "dead_letters": len(dead),
        "dead_letters_applied": dead_applied,
    }
    return errors.result("outbox_delivered", counts)


@checker("projection_converges")
def projection_converges(
    history: Sequence[Mapping[str, Any]], state: Mapping[str, Any], ctx: CheckContext
) -> CheckResult:
    """After settling, every projected balance equals the ledger balance.

    An account without a projection row counts as projected 0; the runner takes the
    snapshot only after the settle timeout, so any difference left is drift.
    """
    errors = ErrorCollector()
    projected = {row["account_id"]: row["balance"] for row in state.get("projections", ())}
    accounts = state.get("accounts", ())
    known = set()
    for acc in accounts:
        aid = acc["id"]
        known.add(aid)
        have = projected.get(aid, 0)
        if have != acc["balance"]:
            errors.add(
                "projection_drift",
                {"account": aid, "ledger": acc["balance"], "projection": have},
                severity=abs(have - acc["balance"]),
                rows={"accounts": [aid], "projections": [aid]},
            )
    for aid, balance in projected.items():
        if aid not in known:
            errors.add(
                "projection_of_unknown_account",
                {"account": aid, "projection": balance},
                rows={"projections": [aid]},
            )
    return errors.result(
        "projection_converges", {"accounts": len(accounts), "projections": len(projected)}
    )
