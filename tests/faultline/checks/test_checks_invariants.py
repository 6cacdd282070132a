"""Every invariant checker catches its planted bug, names it, and shows the evidence."""

from __future__ import annotations

from typing import Any

from checks_helpers import check, error

from faultline.checks import CHECKERS, INVARIANTS, CheckContext, CheckResult, run_checks
from faultline.checks._audit import GENESIS_HASH, local_chain_hash
from faultline.checks.synthetic import SyntheticRun


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


def test_clean_run_passes_every_invariant(run: SyntheticRun) -> None:
    results = run_checks(None, run.history, run.state)
    assert [r.name for r in results] == list(INVARIANTS)
    for r in results:
        assert r.valid is True, r
        assert r.errors == []


def test_all_invariants_are_registered() -> None:
    assert set(INVARIANTS) <= set(CHECKERS)


# ------------------------------------------------------------ acknowledged_exactly_once


def test_double_charge_is_caught_with_the_ok_line_and_both_rows(run: SyntheticRun) -> None:
    key = run.ok_keys[5]
    add_copy_of_transfer(run, key, "t-dup")
    rec = error(check("acknowledged_exactly_once", run), "double_charge")
    assert rec["count"] == 1
    assert rec["first"]["key"] == key
    result = check("acknowledged_exactly_once", run)
    assert run.line_of_key[key] in result.evidence["history"]
    assert set(result.evidence["rows"]["transfers"]) == {transfer_of(run, key)["id"], "t-dup"}


def test_lost_ok_is_caught(run: SyntheticRun) -> None:
    key = run.ok_keys[7]
    tid = transfer_of(run, key)["id"]
    run.state["transfers"] = [t for t in run.state["transfers"] if t["id"] != tid]
    result = check("acknowledged_exactly_once", run)
    rec = error(result, "lost_ok")
    assert rec["first"]["key"] == key
    assert result.evidence["history"] == [run.line_of_key[key]]


def test_info_applied_twice_is_caught(run: SyntheticRun) -> None:
    key = run.info_applied_keys[0]
    add_copy_of_transfer(run, key, "t-info-dup")
    result = check("acknowledged_exactly_once", run)
    rec = error(result, "info_applied_twice")
    assert rec["first"]["key"] == key
    assert "t-info-dup" in result.evidence["rows"]["transfers"]


def test_info_applied_once_or_never_is_fine(run: SyntheticRun) -> None:
    assert run.info_applied_keys
    assert run.info_lost_keys
    assert check("acknowledged_exactly_once", run).valid is True


def test_failed_operation_that_moved_money_is_caught(run: SyntheticRun) -> None:
    key = run.failed_keys[0]
    run.state["transfers"].append(dict(run.state["transfers"][-1], id="t-ghost", idempotency_key=key))
    rec = error(check("acknowledged_exactly_once", run), "failed_but_applied")
    assert rec["first"]["key"] == key


def test_a_declined_row_under_a_refused_key_is_no_failed_but_applied(run: SyntheticRun) -> None:
    """A stored refusal (a declined transfer, no money moved) under the key of an
    operation the client saw refused is the truth, not a payment that happened."""
    key = run.failed_keys[0]
    run.state["transfers"].append(dict(run.state["transfers"][-1], id="t-declined",
                                       idempotency_key=key, status="declined"))
    assert check("acknowledged_exactly_once", run).valid is True


def test_transfer_nobody_invoked_is_caught(run: SyntheticRun) -> None:
    run.state["transfers"].append(dict(run.state["transfers"][-1], id="t-x", idempotency_key="never-sent"))
    result = check("acknowledged_exactly_once", run)
    error(result, "transfer_without_invoke")
    assert result.evidence["rows"]["transfers"] == ["t-x"]


def test_baseline_transfers_are_not_the_drills(run: SyntheticRun) -> None:
    extra = dict(run.state["transfers"][-1], id="t-pre", idempotency_key="from-before")
    run.state["transfers"].append(extra)
    ctx = CheckContext(baseline={"transfers": [extra]})
    assert check("acknowledged_exactly_once", run, ctx).valid is True


def test_unfinished_invoke_counts_as_info(run: SyntheticRun) -> None:
    key = run.ok_keys[-1]
    line = run.line_of_key[key]
    del run.history[line]  # the client died before recording the answer
    result = check("acknowledged_exactly_once", run)
    assert result.valid is True
    assert result.counts["unfinished_operations"] == 1


def test_empty_history_is_unknown_not_valid(run: SyntheticRun) -> None:
    [result] = run_checks(["acknowledged_exactly_once"], [], run.state)
    assert result.valid == "unknown"


# ------------------------------------------------------------ idempotent_replay


def test_different_body_replay_accepted_is_caught(run: SyntheticRun) -> None:
    line = next(i for i, op in enumerate(run.history) if op["f"] == "replay_diff" and op["type"] == "fail")
    run.history[line].update(type="ok", status=201, body={"id": "t-new", "status": "posted"})
    result = check("idempotent_replay", run)
    rec = error(result, "different_body_accepted")
    assert rec["first"]["line"] == line
    assert line in result.evidence["history"]


def test_replay_with_a_different_answer_is_caught(run: SyntheticRun) -> None:
    line = next(i for i, op in enumerate(run.history) if op["f"] == "replay" and op["type"] == "ok")
    run.history[line]["body"] = {"id": "t-other", "status": "posted"}
    result = check("idempotent_replay", run)
    rec = error(result, "replay_mismatch")
    assert rec["first"]["replay"]["line"] == line
    error(result, "stored_response_mismatch")
    assert line in result.evidence["history"]


def test_stored_response_body_as_json_text_is_compared(run: SyntheticRun) -> None:
    import json

    for row in run.state["idempotency"]:
        row["response_body"] = json.dumps(row["response_body"])
    assert check("idempotent_replay", run).valid is True


# ------------------------------------------------------------ ledger


def test_unbalanced_entries_are_caught(run: SyntheticRun) -> None:
    entry = run.state["entries"][-1]
    entry["amount"] += 1
    result = check("balanced_entries", run)
    rec = error(result, "unbalanced_entries")
    assert rec["first"]["transfer"] == entry["transfer_id"]
    assert entry["id"] in result.evidence["rows"]["entries"]
    error(check("conservation", run), "balance_entries_mismatch")


def test_missing_and_orphan_entries_are_caught(run: SyntheticRun) -> None:
    tid = run.state["transfers"][-1]["id"]
    run.state["entries"] = [e for e in run.state["entries"] if e["transfer_id"] != tid]
    run.state["entries"].append({"id": 10**9, "transfer_id": "nope", "account_id": "acc-1",
                                 "amount": 0, "currency": "EUR"})
    result = check("balanced_entries", run)
    assert error(result, "missing_entries")["first"]["transfer"] == tid
    error(result, "orphan_entries")


def test_entries_in_another_currency_are_caught(run: SyntheticRun) -> None:
    tid = run.state["transfers"][-1]["id"]
    for e in run.state["entries"]:
        if e["transfer_id"] == tid:
            e["currency"] = "USD"
    error(check("balanced_entries", run), "currency_mismatch")


def test_money_created_from_nothing_breaks_conservation(run: SyntheticRun) -> None:
    acc = run.state["accounts"][3]
    acc["balance"] += 500
    result = check("conservation", run)
    error(result, "currency_not_conserved")
    rec = error(result, "balance_entries_mismatch")
    assert rec["first"]["account"] == acc["id"]
    assert result.evidence["rows"]["accounts"] == [acc["id"]]


def test_external_inflow_must_match_issuance(run: SyntheticRun) -> None:
    run.state["external_inflow"]["EUR"] += 1
    error(check("conservation", run), "inflow_mismatch")


def test_negative_balance_is_caught(run: SyntheticRun) -> None:
    acc = run.state["accounts"][2]
    acc["balance"] = -7
    result = check("non_negative", run)
    rec = error(result, "negative_balance")
    assert rec["first"] == {"account": acc["id"], "balance": -7}
    assert result.evidence["rows"]["accounts"] == [acc["id"]]


def test_issuance_account_may_go_negative(run: SyntheticRun) -> None:
    assert run.state["accounts"][0]["balance"] < 0
    assert check("non_negative", run).valid is True


# ------------------------------------------------------------ outbox, stream, projections


def test_missing_outbox_event_is_caught(run: SyntheticRun) -> None:
    gone = run.state["outbox"].pop(10)
    result = check("outbox_delivered", run)
    assert error(result, "missing_outbox_event")["first"]["transfer"] == gone["transfer_id"]
    assert result.evidence["rows"]["transfers"] == [gone["transfer_id"]]


def test_duplicate_outbox_event_is_caught(run: SyntheticRun) -> None:
    row = run.state["outbox"][4]
    run.state["outbox"].append(dict(row, id=10**6, event_id="e-extra"))
    run.state["stream"].append({"stream_id": "x-0", "event_id": "e-extra", "transfer_id": row["transfer_id"]})
    run.state["processed_events"].append({"event_id": "e-extra", "consumer": "worker-2"})
    result = check("outbox_delivered", run)
    rec = error(result, "duplicate_outbox_event")
    assert rec["first"]["transfer"] == row["transfer_id"]
    assert set(result.evidence["rows"]["outbox"]) == {row["id"], 10**6}


def test_event_lost_before_the_stream_is_caught(run: SyntheticRun) -> None:
    gone = run.state["stream"].pop(3)
    run.state["processed_events"] = [
        p for p in run.state["processed_events"] if p["event_id"] != gone["event_id"]]
    result = check("outbox_delivered", run)
    assert error(result, "event_not_in_stream")["first"]["event"] == gone["event_id"]


def test_unpublished_event_is_caught(run: SyntheticRun) -> None:
    gone = run.state["stream"].pop(3)
    run.state["processed_events"] = [
        p for p in run.state["processed_events"] if p["event_id"] != gone["event_id"]]
    next(o for o in run.state["outbox"] if o["event_id"] == gone["event_id"])["published_at"] = None
    error(check("outbox_delivered", run), "unpublished_event")


def test_double_apply_is_judged_by_its_effect_on_the_projection(run: SyntheticRun) -> None:
    """``processed_events`` is keyed by ``event_id``: a snapshot never lists an event
    twice, and a consumer that applies one twice leaves one row and a projection off by
    the event's legs (the ``projection_double_apply`` bug)."""
    event = run.state["outbox"][8]
    transfer = next(t for t in run.state["transfers"] if t["id"] == event["transfer_id"])
    for proj in run.state["projections"]:
        if proj["account_id"] == transfer["from_account"]:
            proj["balance"] -= transfer["amount"]
        if proj["account_id"] == transfer["to_account"]:
            proj["balance"] += transfer["amount"]
    assert check("outbox_delivered", run).valid is True
    rec = error(check("projection_converges", run), "projection_drift")
    assert rec["count"] == 2
    assert {rec["first"]["account"], rec["last"]["account"]} == {
        transfer["from_account"], transfer["to_account"]}


def test_event_never_applied_and_dead_letters(run: SyntheticRun) -> None:
    lost = run.state["processed_events"].pop(1)
    dead = run.state["processed_events"].pop(1)
    run.state["dead_letters"].append({"stream_id": "9-0", "event_id": dead["event_id"], "reason": "poison"})
    result = check("outbox_delivered", run)
    assert error(result, "event_not_applied")["first"]["event"] == lost["event_id"]
    assert error(result, "dead_letter")["first"]["reason"] == "poison"


def test_redelivered_stream_entries_applied_once_are_fine(run: SyntheticRun) -> None:
    run.state["stream"].append(dict(run.state["stream"][0], stream_id="99-0"))
    result = check("outbox_delivered", run)
    assert result.valid is True
    assert result.counts["stream_redeliveries"] == 1


def test_projection_drift_is_caught(run: SyntheticRun) -> None:
    proj = run.state["projections"][5]
    proj["balance"] += 100
    result = check("projection_converges", run)
    rec = error(result, "projection_drift")
    assert rec["first"]["account"] == proj["account_id"]
    assert result.evidence["rows"]["projections"] == [proj["account_id"]]


# ------------------------------------------------------------ audit


def test_tampered_audit_row_is_caught(run: SyntheticRun) -> None:
    row = run.state["audit"][20]
    row["payload"] = row["payload"].replace('"amount":', '"amount":1')
    result = check("audit_complete", run)
    rec = error(result, "tampered_audit_row")
    assert rec["count"] == 1
    assert result.evidence["rows"]["audit"] == [row["seq"]]


def test_forked_chain_is_caught(run: SyntheticRun) -> None:
    chain_hash = local_chain_hash
    rows = run.state["audit"]
    forked = rows[30]
    forked["prev_hash"] = rows[28]["hash"]  # linked to a stale head, as a racy append does
    forked["hash"] = chain_hash(forked["prev_hash"], forked)
    result = check("audit_complete", run)
    rec = error(result, "broken_chain")
    assert rec["first"]["seq"] == forked["seq"]


def test_removed_audit_row_shows_as_gap_and_missing_audit(run: SyntheticRun) -> None:
    gone = run.state["audit"].pop(40)
    result = check("audit_complete", run)
    assert error(result, "missing_audit")["first"]["transfer"] == gone["entity_id"]
    error(result, "audit_gap")


def test_local_chain_hash_matches_payments_formula() -> None:

    row = {"seq": 1, "entity": "transfer", "entity_id": "t1", "action": "posted",
           "payload": {"b": 1, "a": "x"}}
    expected = local_chain_hash(GENESIS_HASH, dict(row, payload='{"a":"x","b":1}'))
    assert local_chain_hash(GENESIS_HASH, row) == expected
    from payments import audit  # the system conforms to the contract

    assert audit.chain_hash(GENESIS_HASH, row) == expected


# ------------------------------------------------------------ composition


def test_crashing_checker_is_unknown_never_valid(run: SyntheticRun) -> None:
    def broken(history: Any, state: Any, ctx: Any) -> CheckResult:
        raise KeyError("boom")

    CHECKERS["broken_for_test"] = broken
    try:
        [result] = run_checks(["broken_for_test"], run.history, run.state)
    finally:
        del CHECKERS["broken_for_test"]
    assert result.valid == "unknown"
    assert result.errors[0]["type"] == "checker_crashed"


def test_malformed_state_row_makes_checker_unknown(run: SyntheticRun) -> None:
    del run.state["accounts"][1]["balance"]
    [result] = run_checks(["non_negative"], run.history, run.state)
    assert result.valid == "unknown"


def test_unknown_checker_name_and_missing_state_are_unknown(run: SyntheticRun) -> None:
    [result] = run_checks(["no_such_checker"], run.history, run.state)
    assert result.valid == "unknown"
    for result in run_checks(None, run.history, None):
        assert result.valid == "unknown"


def test_all_expands_to_every_invariant(run: SyntheticRun) -> None:
    names = [r.name for r in run_checks(["all"], run.history, run.state)]
    assert names == list(INVARIANTS)


def test_results_are_json_ready(run: SyntheticRun) -> None:
    import json

    add_copy_of_transfer(run, run.ok_keys[0], "t-dup")
    for r in run_checks(None, run.history, run.state):
        again = CheckResult.from_dict(json.loads(json.dumps(r.to_dict())))
        assert again.valid == r.valid
        assert again.errors == r.errors


def test_audit_rows_with_parsed_payloads_are_rehashed_one_by_one(run: SyntheticRun) -> None:
    import json

    for row in run.state["audit"]:
        row["payload"] = json.loads(row["payload"])  # a snapshot that parsed the JSON
    assert check("audit_complete", run).valid is True
    run.state["audit"][3]["payload"]["amount"] += 1
    assert error(check("audit_complete", run), "tampered_audit_row")["first"]["seq"] == 4


def test_a_table_missing_from_the_snapshot_is_unknown(run: SyntheticRun) -> None:
    del run.state["audit"]
    [result] = run_checks(["audit_complete"], run.history, run.state)
    assert result.valid == "unknown"
    assert "audit" in result.message


def test_completions_without_key_or_latency_take_the_invoke(run: SyntheticRun) -> None:
    for op in run.history:
        if op["type"] != "invoke":
            op.pop("key", None)
            op.pop("latency_ms", None)
    assert check("acknowledged_exactly_once", run).valid is True
    add_copy_of_transfer(run, run.ok_keys[1], "t-dup")
    rec = error(check("acknowledged_exactly_once", run), "double_charge")
    assert rec["first"]["key"] == run.ok_keys[1]
