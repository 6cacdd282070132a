"""Events: transfer -> one outbox row -> the stream -> applied once -> projections.

What a correct stack may leave behind, and so is no violation: an event applied and
later trimmed from the stream (retention is not loss), or applied and then re-queued
unpublished (the relay re-publishes everything after Redis lost entries); an event
delivered twice but applied once (``stream_redeliveries``). Whether an event was applied
*twice* is judged by its effect: ``projection_converges`` (``processed_events`` is keyed
by ``event_id``, so a snapshot can never show one event applied twice).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._columns import Codes, Members, first_appearance, isin, uniq
from ._registry import checker
from ._result import CheckContext, CheckResult, ErrorCollector, Example
from ._snapshot import state_source, table

__all__ = ["outbox_delivered", "projection_converges"]

_KINDS = ("unpublished_event", "event_not_in_stream", "dead_letter", "event_not_applied")
_SHAPES = {
    "unpublished_event": (False, ("outbox",)),
    "event_not_in_stream": (False, ("outbox",)),
    "dead_letter": (False, ("outbox", "dead_letters")),
    "event_not_applied": (False, ("outbox",)),
}


@checker("outbox_delivered")
def outbox_delivered(history: Any, state: Any, ctx: CheckContext) -> CheckResult:
    """Every committed transfer has exactly one outbox event, and every event is
    applied (``processed_events``). An event that was not is named by how far it got:
    never published, published but never in the stream, dead-lettered, or in the
    stream and never applied."""
    errors = ErrorCollector()
    outbox = table(state, ctx, "outbox")
    transfers = table(state, ctx, "transfers")
    o_tid = outbox.col("transfer_id")
    ids = transfers.col("id")
    committed = ids[~transfers.col("uncommitted")]
    missing = first_appearance(committed[~isin(committed, o_tid)])
    if len(missing):
        errors.add_batch(("missing_outbox_event",), np.zeros(len(missing), np.int64),
                         _missing_examples(missing, transfers),
                         shapes={"missing_outbox_event": (False, ("transfers",))})
    sorted_tid = np.sort(o_tid)
    if len(sorted_tid) > 1 and bool(np.any(sorted_tid[1:] == sorted_tid[:-1])):
        o_uniq, first, counts = np.unique(o_tid, return_index=True, return_counts=True)
        dup = counts > 1
        order = np.argsort(first[dup], kind="stable")
        errors.add_batch(("duplicate_outbox_event",), np.zeros(int(dup.sum()), np.int64),
                         _duplicate_examples(o_uniq[dup][order], counts[dup][order], outbox),
                         shapes={"duplicate_outbox_event": (False, ("transfers", "outbox"))},
                         severity=counts[dup][order])
    events = outbox.col("event_id")
    published = outbox.col("published_at")
    in_stream_ids = table(state, ctx, "stream").col("event_id")
    applied_ids = table(state, ctx, "processed_events").col("event_id")
    dead_ids = table(state, ctx, "dead_letters").col("event_id")
    members = Members(events)
    applied = members.of(applied_ids)
    dead = members.of(dead_ids) & ~applied
    streamed = members.of(in_stream_ids)
    lost = ~applied & ~dead
    kind = np.full(len(events), -1, np.int64)
    kind[lost & ~published] = 0
    kind[lost & published & ~streamed] = 1
    kind[dead] = 2
    kind[lost & published & streamed] = 3
    bad = np.flatnonzero(kind >= 0)
    if len(bad):
        errors.add_batch(_KINDS, kind[bad], _event_examples(bad, kind, outbox, state, ctx),
                         shapes=_SHAPES)
    uniq_applied = uniq(applied_ids)
    counts_out = {
        "committed_transfers": len(uniq(committed)),
        "outbox_events": len(events),
        "stream_entries": len(in_stream_ids),
        "stream_redeliveries": len(in_stream_ids) - len(uniq(in_stream_ids)),
        "applied_events": len(applied_ids),
        "applied_not_in_stream": int(np.count_nonzero(applied & ~streamed)),
        "dead_letters": len(uniq(dead_ids)),
        "dead_letters_applied": int(np.count_nonzero(isin(uniq(dead_ids), uniq_applied))),
    }
    return errors.result("outbox_delivered", counts_out)


def _missing_examples(missing: Codes, transfers: Any) -> Any:
    ids = transfers.col("id")

    def materialize(positions: Any) -> list[Example]:
        codes = missing[positions]
        where = np.flatnonzero(isin(ids, codes))
        rows = transfers.rows_at(where.tolist())
        tid = {hash(r["id"]): r["id"] for r in rows.values()}
        return [({"transfer": tid[c]}, (), {"transfers": [tid[c]]}) for c in codes.tolist()]

    return materialize


def _duplicate_examples(codes: Codes, counts: Any, outbox: Any) -> Any:
    o_tid = outbox.col("transfer_id")

    def materialize(positions: Any) -> list[Example]:
        wanted = codes[positions]
        where = np.flatnonzero(isin(o_tid, wanted))
        rows = outbox.rows_at(where.tolist())
        by_tid: dict[int, list[dict[str, Any]]] = {}
        for p in where.tolist():
            by_tid.setdefault(hash(rows[p]["transfer_id"]), []).append(rows[p])
        out: list[Example] = []
        for code, n in zip(wanted.tolist(), counts[positions].tolist(), strict=True):
            rs = by_tid[code]
            tid = rs[0]["transfer_id"]
            out.append(({"transfer": tid, "events": n}, (),
                        {"transfers": [tid], "outbox": [r["id"] for r in rs]}))
        return out

    return materialize


def _event_examples(bad: Any, kind: Any, outbox: Any, state: Any, ctx: CheckContext) -> Any:
    dead_table = table(state, ctx, "dead_letters")

    def materialize(positions: Any) -> list[Example]:
        rows_pos = bad[positions]
        rows = outbox.rows_at(rows_pos.tolist())
        dead_codes = uniq(outbox.col("event_id")[rows_pos][kind[rows_pos] == 2])
        dead_rows: dict[int, dict[str, Any]] = {}
        if len(dead_codes):
            where = np.flatnonzero(isin(dead_table.col("event_id"), dead_codes))
            for row in dead_table.rows_at(where.tolist()).values():
                dead_rows[hash(row.get("event_id"))] = row  # the last one, as a dict by id
        out: list[Example] = []
        for p in rows_pos.tolist():
            row, k = rows[p], int(kind[p])
            event = row["event_id"]
            if k == 2:
                d = dead_rows[hash(event)]
                out.append(({"event": event, "reason": d.get("reason")}, (),
                            {"outbox": [row["id"]], "dead_letters": [d.get("stream_id")]}))
            else:
                out.append(({"event": event, "transfer": row["transfer_id"]}, (),
                            {"outbox": [row["id"]]}))
        return out

    return materialize


@checker("projection_converges")
def projection_converges(history: Any, state: Any, ctx: CheckContext) -> CheckResult:
    """After settling, every projected balance equals the ledger balance.

    An account without a projection row counts as projected 0; the runner takes the
    snapshot only after the settle timeout, so any difference left is drift.
    """
    errors = ErrorCollector()
    src = state_source(state, ctx)
    projected = {row["account_id"]: row["balance"] for row in src.rows("projections")}
    accounts = src.rows("accounts")
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
