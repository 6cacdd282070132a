"""Synthetic, internally consistent runs (history + final state) for tests and benchmarks.

``synthetic_run(n)`` returns a history of ``n`` operations (an ``invoke`` and one
completion each, plus one fault window) and the final-state snapshot a correct payment
stack would leave behind. Every invariant checker passes on it; tests plant one bug at
a time and expect the right checker to name it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from ._audit import GENESIS_HASH, resolve_chain_hash

__all__ = ["SyntheticRun", "synthetic_run"]

_MIX = (("transfer", 60), ("replay", 10), ("replay_diff", 5), ("balance", 15), ("statement", 10))


@dataclass(slots=True)
class SyntheticRun:
    """A consistent history and snapshot, with handles for planting bugs."""

    history: list[dict[str, Any]]
    state: dict[str, Any]
    ok_keys: list[str] = field(default_factory=list)
    info_applied_keys: list[str] = field(default_factory=list)
    info_lost_keys: list[str] = field(default_factory=list)
    failed_keys: list[str] = field(default_factory=list)
    line_of_key: dict[str, int] = field(default_factory=dict)


def synthetic_run(
    n_ops: int = 1000,
    *,
    seed: int = 1,
    accounts: int = 50,
    fault: bool = True,
    audit: bool = True,
    step_ns: int = 1_000_000,
) -> SyntheticRun:
    """A run of ``n_ops`` operations; ``fault`` adds one nemesis window in the middle."""
    rng = random.Random(seed)
    funcs = [f for f, w in _MIX for _ in range(w)]
    customers = [f"acc-{i}" for i in range(accounts)]
    balance = dict.fromkeys(customers, 0)
    issuance = "acc-issuance"
    transfers: list[dict[str, Any]] = []
    entries: list[dict[str, Any]] = []
    idem: list[dict[str, Any]] = []
    history: list[dict[str, Any]] = []
    run = SyntheticRun(history, {})
    entry_id = 0
    initial = max(1_000_000, n_ops * 200 // max(accounts, 1))

    def post(tid: str, key: str | None, src: str, dst: str, amount: int) -> None:
        nonlocal entry_id
        transfers.append(
            {
                "id": tid,
                "merchant_id": "m1",
                "idempotency_key": key,
                "from_account": src,
                "to_account": dst,
                "amount": amount,
                "currency": "EUR",
                "status": "posted",
                "created_at": "2026-01-01T00:00:00",
            }
        )
        entry_id += 2
        entries.append({"id": entry_id - 1, "transfer_id": tid, "account_id": src, "amount": -amount, "currency": "EUR"})
        entries.append({"id": entry_id, "transfer_id": tid, "account_id": dst, "amount": amount, "currency": "EUR"})
        if src in balance:
            balance[src] -= amount
        if dst in balance:
            balance[dst] += amount

    for i, acc in enumerate(customers):
        post(f"seed-{i}", None, issuance, acc, initial)

    bodies: dict[str, dict[str, Any]] = {}
    fault_at = n_ops // 3 if fault else -1
    fault_end = 2 * n_ops // 3 if fault else -1
    t = 1_000_000_000
    for i in range(n_ops):
        if i == fault_at:
            history.append({"index": len(history), "process": "nemesis", "type": "info", "f": "start",
                            "time": t, "value": {"index": 0, "name": "latency@api->postgres",
                                                 "fault": "toxic", "hop": "api->postgres"}})
        if i == fault_end:
            history.append({"index": len(history), "process": "nemesis", "type": "info", "f": "stop",
                            "time": t, "value": {"index": 0, "name": "latency@api->postgres",
                                                 "fault": "toxic", "hop": "api->postgres"}})
        f = funcs[rng.randrange(len(funcs))]
        if f in ("replay", "replay_diff") and not run.ok_keys:
            f = "transfer"
        proc = f"w{i % 4}-u{i % 64}"
        key: str | None = None
        value: dict[str, Any] = {"merchant_id": "m1"}
        if f == "transfer":
            key = f"k{i}"
            src, dst = rng.sample(customers, 2)
            value.update(from_account=src, to_account=dst, amount=rng.randint(1, 100), currency="EUR")
        elif f in ("replay", "replay_diff"):
            key = run.ok_keys[rng.randrange(len(run.ok_keys))]
        else:
            value["account"] = customers[rng.randrange(accounts)]
        lat = rng.uniform(1.0, 20.0) if not fault_at <= i < fault_end else rng.uniform(5.0, 200.0)
        history.append({"index": len(history), "type": "invoke", "process": proc, "f": f, "time": t,
                        "key": key, "value": value})
        done = t + int(lat * 1e6 + 0.5)
        comp: dict[str, Any] = {"index": len(history), "process": proc, "f": f, "time": done,
                                "key": key, "latency_ms": lat, "error": None}
        if f == "transfer":
            assert key is not None
            roll = rng.random()
            if roll < 0.93:
                tid = f"t{i}"
                post(tid, key, value["from_account"], value["to_account"], value["amount"])
                body = {"id": tid, "status": "posted"}
                bodies[key] = body
                idem.append({"merchant_id": "m1", "key": key, "request_hash": f"h{i}",
                             "status_code": 201, "response_body": dict(body), "state": "done"})
                comp.update(type="ok", status=201, body=body)
                run.ok_keys.append(key)
                run.line_of_key[key] = len(history)
            elif roll < 0.96:
                comp.update(type="fail", status=422, body={"error": "insufficient_funds"})
                run.failed_keys.append(key)
                run.line_of_key[key] = len(history)
            elif roll < 0.98:
                tid = f"t{i}"
                post(tid, key, value["from_account"], value["to_account"], value["amount"])
                idem.append({"merchant_id": "m1", "key": key, "request_hash": f"h{i}",
                             "status_code": 201, "response_body": {"id": tid, "status": "posted"},
                             "state": "done"})
                comp.update(type="info", status=None, body=None, error="timeout")
                run.info_applied_keys.append(key)
                run.line_of_key[key] = len(history)
            else:
                comp.update(type="info", status=None, body=None, error="connection reset")
                run.info_lost_keys.append(key)
                run.line_of_key[key] = len(history)
        elif f == "replay":
            assert key is not None
            comp.update(type="ok", status=201, body=dict(bodies[key]))
        elif f == "replay_diff":
            comp.update(type="fail", status=422, body={"error": "idempotency_key_reused"})
        else:
            comp.update(type="ok", status=200, body={"balance": 0})
        history.append(comp)
        t += step_ns

    accounts_rows = [{"id": issuance, "merchant_id": "m1", "currency": "EUR",
                      "balance": -initial * accounts, "non_negative": False, "kind": "issuance"}]
    accounts_rows += [{"id": a, "merchant_id": "m1", "currency": "EUR", "balance": balance[a],
                       "non_negative": True, "kind": "customer"} for a in customers]
    outbox = [{"id": n + 1, "event_id": f"e-{tr['id']}", "transfer_id": tr["id"],
               "published_at": "2026-01-01T00:00:01", "stream_id": f"{n + 1}-0"}
              for n, tr in enumerate(transfers)]
    stream = [{"stream_id": o["stream_id"], "event_id": o["event_id"], "transfer_id": o["transfer_id"]}
              for o in outbox]
    processed = [{"event_id": o["event_id"], "consumer": "worker-1"} for o in outbox]
    audit_rows: list[dict[str, Any]] = []
    if audit:
        chain_hash = resolve_chain_hash()
        prev = GENESIS_HASH
        for seq, tr in enumerate(transfers, start=1):
            row = {"seq": seq, "entity": "transfer", "entity_id": tr["id"], "action": "posted",
                   "payload": f'{{"amount":{tr["amount"]},"id":"{tr["id"]}"}}', "prev_hash": prev}
            row["hash"] = prev = chain_hash(prev, row)
            audit_rows.append(row)
    run.state = {
        "accounts": accounts_rows,
        "transfers": transfers,
        "entries": entries,
        "idempotency": idem,
        "outbox": outbox,
        "stream": stream,
        "dead_letters": [],
        "processed_events": processed,
        "projections": [{"account_id": a["id"], "balance": a["balance"]} for a in accounts_rows],
        "audit": audit_rows,
        "external_inflow": {"EUR": initial * accounts},
    }
    return run
