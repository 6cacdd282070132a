"""Every error type a checker can report fires on a planted bug, none fires on a correct
run (also one that met faults), and docs/checks.md lists exactly these types."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from checks_helpers import check, error, fresh_run
from planted import PLANTED

from faultline.checks import CHECKERS, ERROR_KINDS, INVARIANTS, run_checks
from faultline.checks.synthetic import SyntheticRun

DOCS = Path(__file__).parents[3] / "docs" / "checks.md"


def fired() -> dict[str, set[str]]:
    """Which types each planting of ``planted.py`` makes each checker report."""
    out: dict[str, set[str]] = {}
    for plant in PLANTED.values():
        run = fresh_run()
        plant(run)
        for r in run_checks(None, run.history, run.state):
            out.setdefault(r.name, set()).update(e["type"] for e in r.errors)
    return out


def test_every_listed_kind_fires_on_a_planted_bug_and_no_other_kind_exists() -> None:
    seen = fired()
    assert set(ERROR_KINDS) == set(INVARIANTS) <= set(CHECKERS)
    for name, kinds in ERROR_KINDS.items():
        assert seen.get(name, set()) == set(kinds), name


def test_docs_list_exactly_the_kinds() -> None:
    text = DOCS.read_text(encoding="utf-8")
    rows = re.findall(r"^\| `(\w+)` \| `(\w+)` \|", text, flags=re.M)
    documented: dict[str, set[str]] = {}
    for checker_name, kind in rows:
        documented.setdefault(checker_name, set()).add(kind)
    assert documented == {k: set(v) for k, v in ERROR_KINDS.items()}


# ------------------------------------------------- what a correct stack under faults leaves


def without_event(run: SyntheticRun, table: str, event: str) -> None:
    run.state[table] = [r for r in run.state[table] if r["event_id"] != event]


def _trimmed(run: SyntheticRun) -> None:  # stream retention after the event was applied
    for row in run.state["stream"][:50]:
        without_event(run, "stream", row["event_id"])


def _requeued(run: SyntheticRun) -> None:  # Redis lost entries; the relay re-queued them all
    for row in run.state["outbox"][-20:]:
        row["published_at"] = None
        without_event(run, "stream", row["event_id"])


def _redelivered(run: SyntheticRun) -> None:  # a consumer died before XACK: delivered again
    run.state["stream"] += [dict(s, stream_id=f"r{i}-0") for i, s in enumerate(run.state["stream"][:30])]


def _dead_after_apply(run: SyntheticRun) -> None:  # applied, then dead-lettered on reclaim
    event = run.state["outbox"][7]["event_id"]
    run.state["dead_letters"].append({"stream_id": "d-0", "event_id": event, "reason": "delivered 6 times"})


def _poison(run: SyntheticRun) -> None:  # an undecodable entry: no event id to miss
    run.state["dead_letters"].append({"stream_id": "d-1", "event_id": None, "reason": "undecodable"})


def _diff_after_unknown(run: SyntheticRun) -> None:
    """A transfer whose request never reached the stack (info, not in the ledger), then
    the same key with another body: the stack sees that one first and accepts it."""
    key = run.info_lost_keys[0]
    line = run.line_of_key[key]
    invoke = next(i for i in range(line - 1, -1, -1) if run.history[i]["type"] == "invoke"
                  and run.history[i]["process"] == run.history[line]["process"])
    value = run.history[invoke]["value"]
    t = run.history[-1]["time"] + 1_000_000
    run.history += [
        {"type": "invoke", "process": "late", "f": "replay_diff", "time": t, "key": key,
         "value": dict(value, amount=value["amount"] + 1)},
        {"type": "ok", "process": "late", "f": "replay_diff", "time": t + 5_000_000, "key": key,
         "status": 201, "body": {"id": "t-late", "status": "posted"}, "latency_ms": 5.0},
    ]
    tr = dict(run.state["transfers"][-1], id="t-late", idempotency_key=key, amount=value["amount"] + 1,
              from_account=value["from_account"], to_account=value["to_account"])
    run.state["transfers"].append(tr)
    n = max(e["id"] for e in run.state["entries"])
    run.state["entries"] += [
        {"id": n + 1, "transfer_id": "t-late", "account_id": tr["from_account"], "amount": -tr["amount"], "currency": "EUR"},
        {"id": n + 2, "transfer_id": "t-late", "account_id": tr["to_account"], "amount": tr["amount"], "currency": "EUR"},
    ]
    for acc in run.state["accounts"]:
        if acc["id"] == tr["from_account"]:
            acc["balance"] -= tr["amount"]
        if acc["id"] == tr["to_account"]:
            acc["balance"] += tr["amount"]
    run.state["projections"] = [{"account_id": a["id"], "balance": a["balance"]} for a in run.state["accounts"]]
    seq = len(run.state["audit"]) + 1
    from faultline.checks._chain import chain_hash

    prev = run.state["audit"][-1]["hash"]
    payload = '{"amount":1,"id":"t-late"}'
    run.state["audit"].append({"seq": seq, "entity": "transfer", "entity_id": "t-late", "action": "posted",
                               "payload": payload, "prev_hash": prev,
                               "hash": chain_hash(prev, seq, "transfer", "t-late", "posted", payload)})
    ev = "e-t-late"
    run.state["outbox"].append({"id": 10**6, "event_id": ev, "transfer_id": "t-late",
                                "published_at": "x", "stream_id": "z-0"})
    run.state["stream"].append({"stream_id": "z-0", "event_id": ev, "transfer_id": "t-late"})
    run.state["processed_events"].append({"event_id": ev, "consumer": "worker-1"})


CORRECT_UNDER_FAULTS: dict[str, Any] = {
    "applied events trimmed from the stream": _trimmed,
    "applied events re-queued unpublished": _requeued,
    "stream entries delivered twice, applied once": _redelivered,
    "an applied event dead-lettered on reclaim": _dead_after_apply,
    "a poison entry without an event id": _poison,
    "a different body for a key whose first request never arrived": _diff_after_unknown,
}


@pytest.mark.parametrize("situation", list(CORRECT_UNDER_FAULTS))
def test_a_correct_stack_under_faults_passes(situation: str) -> None:
    run = fresh_run()
    CORRECT_UNDER_FAULTS[situation](run)
    for r in run_checks(None, run.history, run.state):
        assert r.valid is True, (situation, r.name, r.errors)


def test_a_different_body_accepted_after_the_first_was_accepted_is_caught() -> None:
    run = fresh_run()
    _diff_after_unknown(run)
    key = run.history[-1]["key"]
    run.history[-1]["key"] = run.ok_keys[2]
    run.history[-2]["key"] = run.ok_keys[2]
    rec = error(check("idempotent_replay", run), "different_body_accepted")
    assert rec["first"]["key"] == run.ok_keys[2] != key


def test_amounts_beyond_64_bits_are_summed_exactly() -> None:
    state = {
        "accounts": [{"id": "a", "currency": "EUR", "balance": 2**63, "kind": "customer"},
                     {"id": "i", "currency": "EUR", "balance": -(2**63), "kind": "issuance"}],
        "entries": [{"id": n, "transfer_id": f"t{n}", "account_id": acc, "amount": amount,
                     "currency": "EUR"}
                    for n, (acc, amount) in enumerate([("a", 2**62), ("i", -(2**62)),
                                                      ("a", 2**62), ("i", -(2**62))])],
    }
    [result] = run_checks(["conservation"], [], state)
    assert result.valid is True, result
    state["accounts"][0]["balance"] += 1
    assert error(run_checks(["conservation"], [], state)[0], "balance_entries_mismatch")["count"] == 1
