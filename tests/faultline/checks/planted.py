"""Planted bugs: one function per violation, each mutating a fresh synthetic run.

The catalogue drives the golden comparison (``golden_results.json`` holds what the
in-memory checkers of before the columnar rewrite reported for each planting), so the
checkers that read runs from disk are pinned to the same verdicts and error records.
Kinds whose old order was a set's (hash-seeded) order are planted once, so that first,
worst and last are one example.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from faultline.checks.synthetic import SyntheticRun

Planting = Callable[[SyntheticRun], None]


def transfer_of(run: SyntheticRun, key: str) -> dict[str, Any]:
    return next(t for t in run.state["transfers"] if t["idempotency_key"] == key)


def add_copy_of_transfer(run: SyntheticRun, key: str, new_id: str) -> None:
    """A second, balanced posting for ``key`` (what a double charge looks like)."""
    tr = dict(transfer_of(run, key), id=new_id)
    run.state["transfers"].append(tr)
    entries = run.state["entries"]
    n = max(e["id"] for e in entries)
    entries.append({"id": n + 1, "transfer_id": new_id, "account_id": tr["from_account"],
                    "amount": -tr["amount"], "currency": "EUR"})
    entries.append({"id": n + 2, "transfer_id": new_id, "account_id": tr["to_account"],
                    "amount": tr["amount"], "currency": "EUR"})


def _double_charge(run: SyntheticRun) -> None:
    add_copy_of_transfer(run, run.ok_keys[5], "t-dup")


def _lost_ok_three(run: SyntheticRun) -> None:
    keys = set(run.ok_keys[3:6]) | {run.ok_keys[40]}
    gone = {t["id"] for t in run.state["transfers"] if t["idempotency_key"] in keys}
    run.state["transfers"] = [t for t in run.state["transfers"] if t["id"] not in gone]
    run.state["entries"] = [e for e in run.state["entries"] if e["transfer_id"] not in gone]


def _info_applied_twice(run: SyntheticRun) -> None:
    add_copy_of_transfer(run, run.info_applied_keys[0], "t-info-dup")


def _failed_but_applied(run: SyntheticRun) -> None:
    key = run.failed_keys[0]
    run.state["transfers"].append(dict(run.state["transfers"][-1], id="t-ghost", idempotency_key=key))


def _without_invoke(run: SyntheticRun) -> None:
    run.state["transfers"].append(dict(run.state["transfers"][-1], id="t-x", idempotency_key="never-sent"))


def _diff_body_accepted(run: SyntheticRun) -> None:
    lines = [i for i, op in enumerate(run.history) if op["f"] == "replay_diff" and op["type"] == "fail"]
    for line in lines[:3]:
        run.history[line].update(type="ok", status=201, body={"id": "t-new", "status": "posted"})


def _replay_mismatch(run: SyntheticRun) -> None:
    lines = [i for i, op in enumerate(run.history) if op["f"] == "replay" and op["type"] == "ok"]
    run.history[lines[0]]["body"] = {"id": "t-other", "status": "posted"}
    run.history[lines[4]]["status"] = 200


def _stored_body_text(run: SyntheticRun) -> None:
    for row in run.state["idempotency"]:
        row["response_body"] = json.dumps(row["response_body"])
    replayed = next(op["key"] for op in run.history if op["f"] == "replay" and op["type"] == "ok")
    next(r for r in run.state["idempotency"] if r["key"] == replayed)["status_code"] = 500


def _unbalanced(run: SyntheticRun) -> None:
    run.state["entries"][-1]["amount"] += 1
    run.state["entries"][-7]["amount"] -= 3


def _missing_and_orphan_entries(run: SyntheticRun) -> None:
    tid = run.state["transfers"][-1]["id"]
    run.state["entries"] = [e for e in run.state["entries"] if e["transfer_id"] != tid]
    run.state["entries"].append({"id": 10**9, "transfer_id": "nope", "account_id": "acc-1",
                                 "amount": 0, "currency": "EUR"})


def _currency_mismatch(run: SyntheticRun) -> None:
    tid = run.state["transfers"][-1]["id"]
    for e in run.state["entries"]:
        if e["transfer_id"] == tid:
            e["currency"] = "USD"


def _uncommitted_with_entries(run: SyntheticRun) -> None:
    run.state["transfers"][30]["status"] = "declined"


def _money_from_nothing(run: SyntheticRun) -> None:
    run.state["accounts"][3]["balance"] += 500
    run.state["accounts"][9]["balance"] -= 20


def _inflow(run: SyntheticRun) -> None:
    run.state["external_inflow"]["EUR"] += 1


def _negative(run: SyntheticRun) -> None:
    run.state["accounts"][2]["balance"] = -7
    run.state["accounts"][5]["balance"] = -70


def _missing_outbox(run: SyntheticRun) -> None:
    run.state["outbox"].pop(10)


def _duplicate_outbox(run: SyntheticRun) -> None:
    for k in (4, 9):
        row = run.state["outbox"][k]
        run.state["outbox"].append(dict(row, id=10**6 + k, event_id=f"e-extra-{k}"))
        run.state["stream"].append({"stream_id": f"x-{k}", "event_id": f"e-extra-{k}",
                                    "transfer_id": row["transfer_id"]})
        run.state["processed_events"].append({"event_id": f"e-extra-{k}", "consumer": "worker-2"})


def _not_in_stream(run: SyntheticRun) -> None:
    gone = [run.state["stream"].pop(3), run.state["stream"].pop(17)]
    gone_ids = {g["event_id"] for g in gone}
    run.state["processed_events"] = [p for p in run.state["processed_events"] if p["event_id"] not in gone_ids]


def _unpublished(run: SyntheticRun) -> None:
    gone = run.state["stream"].pop(3)
    run.state["processed_events"] = [p for p in run.state["processed_events"] if p["event_id"] != gone["event_id"]]
    next(o for o in run.state["outbox"] if o["event_id"] == gone["event_id"])["published_at"] = None


def _not_applied_and_dead(run: SyntheticRun) -> None:
    run.state["processed_events"].pop(1)
    dead = run.state["processed_events"].pop(1)
    run.state["processed_events"].pop(5)
    run.state["dead_letters"].append({"stream_id": "9-0", "event_id": dead["event_id"], "reason": "poison"})


def _projection_drift(run: SyntheticRun) -> None:
    run.state["projections"][5]["balance"] += 100
    run.state["projections"][8]["balance"] -= 1000
    run.state["projections"].append({"account_id": "acc-ghost", "balance": 3})


def _tampered(run: SyntheticRun) -> None:
    for k in (20, 21, 50):
        row = run.state["audit"][k]
        row["payload"] = row["payload"].replace('"amount":', '"amount":1')


def _removed_audit_row(run: SyntheticRun) -> None:
    run.state["audit"].pop(40)


def _genesis(run: SyntheticRun) -> None:
    run.state["audit"][0]["prev_hash"] = "1" * 64


PLANTED: dict[str, Planting] = {
    "clean": lambda run: None,
    "double_charge": _double_charge,
    "lost_ok": _lost_ok_three,
    "info_applied_twice": _info_applied_twice,
    "failed_but_applied": _failed_but_applied,
    "transfer_without_invoke": _without_invoke,
    "different_body_accepted": _diff_body_accepted,
    "replay_mismatch": _replay_mismatch,
    "stored_response_mismatch": _stored_body_text,
    "unbalanced_entries": _unbalanced,
    "missing_and_orphan_entries": _missing_and_orphan_entries,
    "currency_mismatch": _currency_mismatch,
    "entries_of_uncommitted_transfer": _uncommitted_with_entries,
    "currency_not_conserved": _money_from_nothing,
    "inflow_mismatch": _inflow,
    "negative_balance": _negative,
    "missing_outbox_event": _missing_outbox,
    "duplicate_outbox_event": _duplicate_outbox,
    "event_not_in_stream": _not_in_stream,
    "unpublished_event": _unpublished,
    "event_not_applied": _not_applied_and_dead,
    "projection_drift": _projection_drift,
    "tampered_audit_row": _tampered,
    "audit_gap": _removed_audit_row,
    "broken_chain": _genesis,
}
