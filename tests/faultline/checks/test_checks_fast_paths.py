"""The million-row fast paths of the checkers reach the verdicts of the plain reads.

Each test drives a checker off its fast path (rows out of order, a changed chain
formula, malformed rows...) or pins a fast path to the reference it replaces.
"""

from __future__ import annotations

from typing import Any

from checks_helpers import check, error

from faultline.checks import run_checks
from faultline.checks._audit import GENESIS_HASH
from faultline.checks.synthetic import SyntheticRun


def test_payments_hashes_rows_as_the_audit_contract_says() -> None:
    """Conformance of the system under test to docs/audit-chain.md (the checker never
    calls payments: this test only tells when the two part ways)."""
    import uuid

    from faultline.checks._chain import chain_hash
    from payments import audit

    payloads: list[Any] = [
        '{"amount":12,"id":"t1"}',
        "",
        "plain | text with the separator",
        {"b": 1, "a": "x"},
        {"nested": {"z": [1, 2.5, None, True], "a": "ünïcødé €"}, "n": -3},
        [3, 1, 2],
        None,
        7,
        1.25,
        {"small": 1e-7, "tiny": 0.00001, "big": 1e16, "neg": -2.5e-8, "zero": -0.0},
        {"ctrl": "a\"b\\c\n\t\x01\x7f\u2028/", "keys": {"é": 1, "e": 2, "z": 3, "\U0001d11e": 4}},
    ]
    seqs: list[Any] = [1, 42, 10**12, "17", True]
    entity_ids: list[Any] = ["t1", uuid.UUID(int=5), 99, "ü-id"]
    rows = [
        {"seq": seq, "entity": entity, "entity_id": entity_id, "action": action, "payload": payload}
        for seq in seqs
        for entity, entity_id, action in zip(
            ("transfer", "account", "transfer", "refund"), entity_ids, ("posted", "opened", "ä", "x|y"),
            strict=True,
        )
        for payload in payloads
    ]
    for prev in (GENESIS_HASH, "ab" * 32):
        for row in rows:
            ours = chain_hash(prev, row["seq"], row["entity"], row["entity_id"], row["action"],
                              row["payload"])
            assert ours == audit.chain_hash(prev, row), row


def test_audit_rows_out_of_seq_order_are_checked_in_seq_order(run: SyntheticRun) -> None:
    rows = run.state["audit"]
    rows.reverse()
    assert check("audit_complete", run).valid is True
    tampered = next(r for r in rows if r["seq"] == 9)
    tampered["action"] = "reversed"
    rows.insert(0, rows.pop(len(rows) // 2))
    result = check("audit_complete", run)
    rec = error(result, "tampered_audit_row")
    assert rec["count"] == 1
    assert rec["first"]["seq"] == 9


def test_a_chain_of_another_self_consistent_formula_is_tampered(run: SyntheticRun) -> None:
    """Were the system to change its formula in its code and its database together,
    every link would still hold; the contract's formula finds every row tampered."""
    import hashlib

    def other_formula(prev_hash: str, row: dict[str, Any]) -> str:
        text = f"v2|{prev_hash}|{row['seq']}|{row['entity_id']}|{row['payload']}"
        return hashlib.sha256(text.encode()).hexdigest()

    prev = GENESIS_HASH
    for row in run.state["audit"]:
        row["prev_hash"] = prev
        row["hash"] = prev = other_formula(prev, row)
    result = check("audit_complete", run)
    rec = error(result, "tampered_audit_row")
    assert rec["count"] == len(run.state["audit"])
    assert rec["first"]["seq"] == 1
    assert {e["type"] for e in result.errors} == {"tampered_audit_row"}  # the links hold


def test_the_checkers_import_nothing_of_the_system_they_judge() -> None:
    from pathlib import Path

    import faultline.checks

    package = Path(faultline.checks.__file__).parent
    for path in package.glob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert "import payments" not in text, path
        assert "from payments" not in text, path


def test_ledger_whose_entries_are_apart_is_summed_per_transfer(run: SyntheticRun) -> None:
    import random

    random.Random(1).shuffle(run.state["entries"])
    for name in ("conservation", "balanced_entries"):
        assert check(name, run).valid is True
    entry = run.state["entries"][3]
    entry["amount"] += 1
    result = check("balanced_entries", run)
    rec = error(result, "unbalanced_entries")
    assert rec["count"] == 1
    assert rec["first"]["transfer"] == entry["transfer_id"]
    assert entry["id"] in result.evidence["rows"]["entries"]


def test_entries_of_a_transfer_split_by_another_still_sum_to_zero(run: SyntheticRun) -> None:
    entries = run.state["entries"]
    # first leg of the last transfer, then another transfer, then its second leg
    entries.insert(len(entries) - 3, entries.pop())
    assert check("balanced_entries", run).valid is True


def test_lost_oks_are_reported_in_history_order(run: SyntheticRun) -> None:
    keys = run.ok_keys[3:6]
    run.state["transfers"] = [t for t in run.state["transfers"] if t["idempotency_key"] not in keys]
    rec = error(check("acknowledged_exactly_once", run), "lost_ok")
    assert rec["count"] == 3
    assert rec["first"]["key"] == keys[0]
    assert rec["last"]["key"] == keys[-1]


def test_a_replay_answered_before_its_transfer_is_the_first_answer() -> None:
    def op(type_: str, proc: str, f: str, t: int, **extra: Any) -> dict[str, Any]:
        return {"type": type_, "process": proc, "f": f, "time": t, "key": "k", **extra}

    posted = {"id": "t1", "status": "posted"}
    history = [
        op("invoke", "p1", "transfer", 1),
        op("invoke", "p2", "replay", 2),
        op("ok", "p2", "replay", 3, status=201, body={"id": "t1", "status": "pending"}),
        op("ok", "p1", "transfer", 4, status=201, body=posted),
        op("invoke", "p3", "replay", 5),
        op("ok", "p3", "replay", 6, status=201, body=posted),
    ]
    state = {"idempotency": [{"key": "k", "status_code": 201, "response_body": posted}]}
    [result] = run_checks(["idempotent_replay"], history, state)
    rec = error(result, "replay_mismatch")
    assert rec["count"] == 1
    assert rec["first"]["first"]["line"] == 2
    assert rec["first"]["replay"]["line"] == 5


def test_a_transfer_without_a_column_fails_only_the_checkers_that_read_it(run: SyntheticRun) -> None:
    del run.state["transfers"][7]["currency"]
    results = {r.name: r for r in run_checks(None, run.history, run.state)}
    assert results["balanced_entries"].valid == "unknown"
    assert "currency" in results["balanced_entries"].message
    for name in ("acknowledged_exactly_once", "outbox_delivered", "audit_complete"):
        assert results[name].valid is True, results[name]


def test_an_entry_without_fields_fails_where_it_always_did(run: SyntheticRun) -> None:
    entries = run.state["entries"]
    del entries[5]["currency"]
    [result] = run_checks(["conservation"], run.history, run.state)
    assert result.valid == "unknown"
    assert "'currency'" in result.message
    del entries[50]["amount"]  # the sums were always read before the currencies
    [result] = run_checks(["conservation"], run.history, run.state)
    assert "'amount'" in result.message


def test_an_outbox_row_without_fields_fails_where_it_always_did(run: SyntheticRun) -> None:
    outbox = run.state["outbox"]
    del outbox[3]["event_id"]
    [result] = run_checks(["outbox_delivered"], run.history, run.state)
    assert result.valid == "unknown"
    assert "'event_id'" in result.message
    del outbox[30]["transfer_id"]  # the transfers were always read before the events
    [result] = run_checks(["outbox_delivered"], run.history, run.state)
    assert "'transfer_id'" in result.message


def test_audit_rows_of_every_shape_rehash_as_payments_hashes_them() -> None:
    import uuid

    from payments import audit

    shapes: list[tuple[str, Any, Any]] = [
        ("transfer", "t1", '{"amount":1,"id":"t1"}'),
        ("transfer", "t2", {"id": "t2", "amount": 2, "note": "ünïcødé €", "tags": [1, None, True]}),
        ("account", uuid.UUID(int=7), {"opened": 1.5}),
        ("transfer", 3, None),
        ("transfer", "t4", "x|y"),
    ]
    rows, prev = [], GENESIS_HASH
    for seq, (entity, entity_id, payload) in enumerate(shapes, start=1):
        row = {"seq": seq, "entity": entity, "entity_id": entity_id, "action": "posted",
               "payload": payload, "prev_hash": prev}
        row["hash"] = prev = audit.chain_hash(prev, row)
        rows.append(row)
    state = {"audit": rows, "transfers": [{"id": r["entity_id"]} for r in rows if r["entity"] == "transfer"]}
    [result] = run_checks(["audit_complete"], [], state)
    assert result.valid is True, result
    rows[1]["payload"]["amount"] = 20
    [result] = run_checks(["audit_complete"], [], state)
    assert error(result, "tampered_audit_row")["first"]["seq"] == 2


def test_checkers_stop_reading_transfers_where_they_always_stopped(run: SyntheticRun) -> None:
    transfers = run.state["transfers"]
    transfers[3]["status"] = "declined"
    del transfers[10]["status"]  # read by nobody once a declined transfer was seen
    results = {r.name: r for r in run_checks(None, run.history, run.state)}
    assert results["outbox_delivered"].valid is True, results["outbox_delivered"]
    assert error(results["balanced_entries"], "entries_of_uncommitted_transfer")["count"] == 1
