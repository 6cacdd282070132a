"""Events: transfer -> one outbox row -> the stream -> applied once -> projections."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from operator import itemgetter
from typing import Any

from ._registry import checker
from ._result import CheckContext, CheckResult, ErrorCollector
from ._snapshot import NOT_COMMITTED, all_committed, transfer_ids

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
    transfers = state.get("transfers", ())
    # both outbox columns from one pass (a pass costs about what the checks on it do);
    # when a row lacks one, each is read where it is needed, so the same row fails
    try:
        columns: list[Any] | None = list(map(itemgetter("transfer_id", "event_id"), outbox))
    except Exception:
        columns = None
    outbox_transfers = set(
        map(itemgetter("transfer_id"), outbox) if columns is None else map(itemgetter(0), columns)
    )
    committed = (
        transfer_ids(state, ctx)
        if all_committed(state, ctx)
        else {t["id"] for t in transfers if t.get("status") not in NOT_COMMITTED}
    )
    for tid in committed - outbox_transfers:
        errors.add("missing_outbox_event", {"transfer": tid}, rows={"transfers": [tid]})
    if len(outbox_transfers) != len(outbox):
        per_transfer = Counter(map(itemgetter("transfer_id"), outbox))
        duplicated = {tid: n for tid, n in per_transfer.items() if n > 1}
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
    stream_rows = state.get("stream", ())
    processed_rows = state.get("processed_events", ())
    in_stream = set(map(itemgetter("event_id"), stream_rows))
    applied_once = set(map(itemgetter("event_id"), processed_rows))
    dead = {row.get("event_id"): row for row in state.get("dead_letters", ())}
    events = set(map(itemgetter("event_id"), outbox) if columns is None else map(itemgetter(1), columns))
    not_in_stream = events - in_stream
    # = (events - not_in_stream) - applied_once, without copying ``events`` first
    not_applied = (events - applied_once) - not_in_stream
    twice = (
        {e: n for e, n in Counter(map(itemgetter("event_id"), processed_rows)).items() if n > 1}
        if len(applied_once) != len(processed_rows)
        else {}
    )
    if not_in_stream or not_applied or twice:
        for row in outbox:
            event = row["event_id"]
            if event in not_in_stream:
                kind = "unpublished_event" if row.get("published_at") is None else "event_not_in_stream"
                errors.add(kind, {"event": event, "transfer": row["transfer_id"]}, rows={"outbox": [row["id"]]})
            elif event in not_applied:
                if event in dead:
                    errors.add(
                        "dead_letter",
                        {"event": event, "reason": dead[event].get("reason")},
                        rows={"outbox": [row["id"]], "dead_letters": [dead[event].get("stream_id")]},
                    )
                else:
                    errors.add("event_not_applied", {"event": event, "transfer": row["transfer_id"]},
                               rows={"outbox": [row["id"]]})
            elif event in twice:
                errors.add(
                    "double_apply",
                    {"event": event, "applied": twice[event], "transfer": row["transfer_id"]},
                    severity=twice[event],
                    rows={"outbox": [row["id"]], "processed_events": [event]},
                )
    counts = {
        "committed_transfers": len(committed),
        "outbox_events": len(outbox),
        "stream_entries": len(stream_rows),
        "stream_redeliveries": len(stream_rows) - len(in_stream),
        "applied_events": len(processed_rows),
        "dead_letters": len(dead),
        "dead_letters_applied": len(dead.keys() & applied_once),
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
