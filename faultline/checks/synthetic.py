"""Synthetic, internally consistent runs (history + final state) for tests and benchmarks.

``synthetic_run(n)`` returns a history of ``n`` operations (an ``invoke`` and one
completion each, plus one fault window) and the final-state snapshot a correct payment
stack would leave behind. Every invariant checker passes on it; tests plant one bug at
a time and expect the right checker to name it.

``write_run_folder(dir, n)`` writes the same run as a run folder that ``faultline check``
reads (scenario, history, final and baseline snapshots), streaming: memory stays flat
however many operations (ten million take a few minutes)::

    python -m faultline.checks.synthetic --ops 1000000 --out runs/synthetic [--seed 1]
        [--plant double_charge --plant tampered_audit_row ...]
"""

from __future__ import annotations

import argparse
import random
import sys
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._chain import GENESIS_HASH, chain_hash
from ._synthetic_sinks import FolderSink, MemorySink, Sink

__all__ = ["PLANTS", "SyntheticRun", "main", "synthetic_run", "write_run_folder"]

_MIX = (("transfer", 60), ("replay", 10), ("replay_diff", 5), ("balance", 15), ("statement", 10))

#: bugs ``--plant`` can put in a written run, each caught by the checker named
PLANTS: dict[str, str] = {
    "double_charge": "acknowledged_exactly_once",
    "lost_ok": "acknowledged_exactly_once",
    "different_body_accepted": "idempotent_replay",
    "replay_mismatch": "idempotent_replay",
    "unbalanced_entries": "balanced_entries",
    "negative_balance": "non_negative",
    "event_not_applied": "outbox_delivered",
    "event_not_in_stream": "outbox_delivered",
    "projection_drift": "projection_converges",
    "tampered_audit_row": "audit_complete",
}


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
    sink = MemorySink()
    run = SyntheticRun(sink.history, sink.state)
    _generate(sink, run, n_ops, seed=seed, accounts=accounts, fault=fault, audit=audit,
              step_ns=step_ns, plant=frozenset())
    return run


def write_run_folder(
    out: str | Path,
    n_ops: int,
    *,
    seed: int = 1,
    accounts: int = 1000,
    plant: frozenset[str] | set[str] = frozenset(),
    step_ns: int = 1_000_000,
) -> Path:
    """Write a complete run folder of ``n_ops`` operations to ``out`` (created)."""
    unknown = set(plant) - set(PLANTS)
    if unknown:
        raise ValueError(f"cannot plant {sorted(unknown)}; known: {sorted(PLANTS)}")
    with FolderSink(Path(out), n_ops=n_ops, step_ns=step_ns, seed=seed) as sink:
        _generate(sink, None, n_ops, seed=seed, accounts=accounts, fault=True, audit=True,
                  step_ns=step_ns, plant=frozenset(plant))
    return Path(out)


def _generate(sink: Sink, run: SyntheticRun | None, n_ops: int, *, seed: int, accounts: int,
              fault: bool, audit: bool, step_ns: int, plant: frozenset[str]) -> None:
    rng = random.Random(seed)
    funcs = [f for f, w in _MIX for _ in range(w)]
    customers = [f"acc-{i}" for i in range(accounts)]
    balance = dict.fromkeys(customers, 0)
    issuance = "acc-issuance"
    ok_ops = array("q")  # the op number of every ok transfer: its key and body follow from it
    initial = max(1_000_000, n_ops * 200 // max(accounts, 1))
    counters = {"entry": 0, "transfer": 0, "seq": 0}
    chain = {"prev": GENESIS_HASH}
    planted = set()
    middle = n_ops // 2

    def due(kind: str, i: int) -> bool:
        if kind in plant and kind not in planted and i >= middle:
            planted.add(kind)
            return True
        return False

    def post(tid: str, key: str | None, src: str, dst: str, amount: int, i: int = -1) -> None:
        sink.row("transfers", {"id": tid, "merchant_id": "m1", "idempotency_key": key,
                               "from_account": src, "to_account": dst, "amount": amount,
                               "currency": "EUR", "status": "posted",
                               "created_at": "2026-01-01T00:00:00"})
        e = counters["entry"] = counters["entry"] + 2
        credit = amount + 1 if due("unbalanced_entries", i) else amount
        sink.row("entries", {"id": e - 1, "transfer_id": tid, "account_id": src,
                             "amount": -amount, "currency": "EUR"})
        sink.row("entries", {"id": e, "transfer_id": tid, "account_id": dst,
                             "amount": credit, "currency": "EUR"})
        if src in balance:
            balance[src] -= amount
        if dst in balance:
            balance[dst] += credit
        n = counters["transfer"] = counters["transfer"] + 1
        event = f"e-{tid}"
        sink.row("outbox", {"id": n, "event_id": event, "transfer_id": tid,
                            "published_at": "2026-01-01T00:00:01", "stream_id": f"{n}-0"})
        lost_before_stream = due("event_not_in_stream", i)
        if not lost_before_stream:
            sink.row("stream", {"stream_id": f"{n}-0", "event_id": event, "transfer_id": tid})
        if not lost_before_stream and not due("event_not_applied", i):
            sink.row("processed_events", {"event_id": event, "consumer": "worker-1"})
        if audit:
            seq = counters["seq"] = counters["seq"] + 1
            payload = f'{{"amount":{amount},"id":"{tid}"}}'
            h = chain_hash(chain["prev"], seq, "transfer", tid, "posted", payload)
            if due("tampered_audit_row", i):
                payload = f'{{"amount":{amount + 1},"id":"{tid}"}}'
            sink.row("audit", {"seq": seq, "entity": "transfer", "entity_id": tid,
                               "action": "posted", "payload": payload,
                               "prev_hash": chain["prev"], "hash": h})
            chain["prev"] = h

    for i, acc in enumerate(customers):
        post(f"seed-{i}", None, issuance, acc, initial)
    sink.baseline_done(balance, issuance, initial, accounts)

    fault_at = n_ops // 3 if fault else -1
    fault_end = 2 * n_ops // 3 if fault else -1
    nemesis_value = {"index": 0, "name": "latency@api->postgres", "fault": "toxic",
                     "hop": "api->postgres"}
    t = 1_000_000_000
    line = 0
    for i in range(n_ops):
        if i == fault_at:
            sink.op({"index": line, "process": "nemesis", "type": "info", "f": "start",
                     "time": t, "value": dict(nemesis_value)})
            line += 1
        if i == fault_end:
            # what the fault proxy counts when it removes a latency toxic
            window_ops = fault_end - fault_at
            effect = {"chunks_delayed": window_ops, "bytes_delayed": 180 * window_ops,
                      "delay_ms": 100 * window_ops}
            sink.op({"index": line, "process": "nemesis", "type": "info", "f": "stop",
                     "time": t, "value": {**nemesis_value, "effect": effect,
                                          "seen": {"connections": 8, "exchanges": window_ops,
                                                   "bytes": 400 * window_ops}}})
            line += 1
        f = funcs[rng.randrange(len(funcs))]
        if f in ("replay", "replay_diff") and not ok_ops:
            f = "transfer"
        proc = f"w{i % 4}-u{i % 64}"
        key: str | None = None
        value: dict[str, Any] = {"merchant_id": "m1"}
        replayed = -1
        if f == "transfer":
            key = f"k{i}"
            src, dst = rng.sample(customers, 2)
            value.update(from_account=src, to_account=dst, amount=rng.randint(1, 100), currency="EUR")
        elif f in ("replay", "replay_diff"):
            replayed = ok_ops[rng.randrange(len(ok_ops))]
            key = f"k{replayed}"
        else:
            value["account"] = customers[rng.randrange(accounts)]
        lat = rng.uniform(1.0, 20.0) if not fault_at <= i < fault_end else rng.uniform(5.0, 200.0)
        sink.op({"index": line, "type": "invoke", "process": proc, "f": f, "time": t,
                 "key": key, "value": value})
        line += 1
        done = t + int(lat * 1e6 + 0.5)
        comp: dict[str, Any] = {"index": line, "process": proc, "f": f, "time": done,
                                "key": key, "latency_ms": lat, "error": None}
        if f == "transfer":
            assert key is not None
            roll = rng.random()
            if roll < 0.93:
                tid = f"t{i}"
                if not due("lost_ok", i):
                    post(tid, key, value["from_account"], value["to_account"], value["amount"], i)
                    if due("double_charge", i):
                        post(f"{tid}-dup", key, value["from_account"], value["to_account"],
                             value["amount"], i)
                body = {"id": tid, "status": "posted"}
                sink.row("idempotency", {"merchant_id": "m1", "key": key, "request_hash": f"h{i}",
                                         "status_code": 201, "response_body": dict(body),
                                         "state": "done"})
                comp.update(type="ok", status=201, body=body)
                ok_ops.append(i)
                sink.mark(run, "ok", key, line)
            elif roll < 0.96:
                comp.update(type="fail", status=422, body={"error": "insufficient_funds"})
                sink.mark(run, "failed", key, line)
            elif roll < 0.98:
                tid = f"t{i}"
                post(tid, key, value["from_account"], value["to_account"], value["amount"], i)
                sink.row("idempotency", {"merchant_id": "m1", "key": key, "request_hash": f"h{i}",
                                         "status_code": 201,
                                         "response_body": {"id": tid, "status": "posted"},
                                         "state": "done"})
                comp.update(type="info", status=None, body=None, error="timeout")
                sink.mark(run, "info_applied", key, line)
            else:
                comp.update(type="info", status=None, body=None, error="connection reset")
                sink.mark(run, "info_lost", key, line)
        elif f == "replay":
            body = {"id": f"t{replayed}", "status": "posted"}
            if due("replay_mismatch", i):
                body["status"] = "pending"
            comp.update(type="ok", status=201, body=body)
        elif f == "replay_diff":
            if due("different_body_accepted", i):
                comp.update(type="ok", status=201, body={"id": f"t{i}", "status": "posted"})
            else:
                comp.update(type="fail", status=422, body={"error": "idempotency_key_reused"})
        else:
            comp.update(type="ok", status=200, body={"balance": 0})
        sink.op(comp)
        line += 1
        t += step_ns
    negative = "negative_balance" in plant
    sink.finish(balance, issuance, initial, accounts, negative=negative,
                drift="projection_drift" in plant)


def main(argv: list[str] | None = None) -> int:
    """``python -m faultline.checks.synthetic``: write a synthetic run folder."""
    parser = argparse.ArgumentParser(prog="python -m faultline.checks.synthetic",
                                     description="Write a consistent synthetic run folder.")
    parser.add_argument("--ops", type=int, required=True, help="client operations")
    parser.add_argument("--out", required=True, help="the run folder to write (created)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--plant", action="append", default=[], choices=sorted(PLANTS),
                        help="a bug to plant (repeatable)")
    args = parser.parse_args(argv)
    path = write_run_folder(args.out, args.ops, seed=args.seed, accounts=args.accounts,
                            plant=set(args.plant))
    print(f"wrote {args.ops:,} operations to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
