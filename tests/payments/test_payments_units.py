"""Pure parts of the payment stack: audit hashing, idempotency hashing, crypto, events."""

from __future__ import annotations

import os

import pytest
from cryptography.exceptions import InvalidTag

from payments import audit
from payments._config import load_settings
from payments._crypto import Sealer, hash_api_key, keys_match, new_api_key
from payments._idempotency import request_hash
from payments.bugs import BUGS
from payments.worker import PoisonError, decode_event


def _chain(n: int) -> list[dict[str, object]]:
    rows, prev = [], audit.GENESIS_HASH
    for seq in range(1, n + 1):
        row = {"seq": seq, "entity": "transfer", "entity_id": f"tr_{seq}", "action": "posted",
               "payload": audit.canonical_payload({"amount": seq, "b": [1, 2]})}
        row["prev_hash"] = prev
        row["hash"] = prev = audit.chain_hash(prev, row)
        rows.append(row)
    return rows


def test_intact_chain_verifies() -> None:
    assert audit.verify_chain(_chain(5)) == []


def test_tampered_payload_is_detected() -> None:
    rows = _chain(5)
    rows[2]["payload"] = rows[2]["payload"].replace("3", "300")  # type: ignore[union-attr]
    problems = audit.verify_chain(rows)
    assert [(p["seq"], p["problem"]) for p in problems] == [(3, "hash")]


def test_removed_row_is_detected() -> None:
    rows = _chain(5)
    del rows[1]
    kinds = {p["problem"] for p in audit.verify_chain(rows)}
    assert kinds == {"gap", "prev_hash"}


def test_chain_hash_accepts_dict_or_canonical_text() -> None:
    row = {"seq": 1, "entity": "e", "entity_id": "i", "action": "a", "payload": {"b": 1, "a": 2}}
    text_row = {**row, "payload": '{"a":2,"b":1}'}
    assert audit.chain_hash("x", row) == audit.chain_hash("x", text_row)


def test_request_hash_ignores_key_order() -> None:
    assert request_hash({"a": 1, "b": 2}) == request_hash({"b": 2, "a": 1})
    assert request_hash({"a": 1}) != request_hash({"a": 2})


def test_sealer_round_trip_and_binding() -> None:
    sealer = Sealer(os.urandom(32))
    blob = sealer.seal(b"Ada Lovelace", b"acc_1")
    assert b"Ada" not in blob
    assert sealer.open(blob, b"acc_1") == b"Ada Lovelace"
    with pytest.raises(InvalidTag):
        sealer.open(blob, b"acc_2")  # ciphertext moved to another row
    assert "key" in repr(sealer)
    assert "hidden" in repr(sealer)


def test_api_keys_hashed_and_compared() -> None:
    key = new_api_key("sk")
    assert len(key) > 40
    assert keys_match(hash_api_key(key), key)
    assert not keys_match(hash_api_key(key), key + "x")


def test_poison_events_are_rejected() -> None:
    good = {b"payload": b'{"event_id":"e1","legs":[["b",5],["a",-5]]}'}
    assert decode_event(good)["legs"] == [("a", -5), ("b", 5)]
    for bad in ({b"payload": b"{not json"}, {b"x": b"1"},
                {b"payload": b'{"event_id":"e","legs":[["a",1],["b",1]]}'}):
        with pytest.raises(PoisonError):
            decode_event(bad)


def test_every_bug_is_documented() -> None:
    required = {"ack_before_commit", "idempotency_not_atomic", "outbox_outside_tx",
                "worker_ack_before_apply", "non_negative_in_python", "relay_drops_on_error"}
    assert required <= set(BUGS)
    for what, breaks in BUGS.values():
        assert what
        assert breaks


def test_settings_reject_unknown_bug(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYMENTS_BUGS", "ack_before_commit,no_such_bug")
    with pytest.raises(ValueError, match="no_such_bug"):
        load_settings()
    monkeypatch.setenv("PAYMENTS_BUGS", "ack_before_commit")
    assert load_settings().bug("ack_before_commit")
