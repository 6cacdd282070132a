"""Deliberate bugs, switched on by ``PAYMENTS_BUGS=name,...`` (all off by default).

Each one is a mistake real payment systems make, and each breaks exactly one invariant
that the drills check. The code paths that implement them are marked ``# BUG(name)``.
"""

from __future__ import annotations

__all__ = ["BUGS"]

#: name -> (what the code does wrong, the invariant it breaks)
BUGS: dict[str, tuple[str, str]] = {
    "ack_before_commit": (
        "api answers 201 as soon as the transfer is validated and commits it in the "
        "background; a failed or lost commit is never reported",
        "`ok` happened exactly once (an acknowledged transfer may not exist)",
    ),
    "idempotency_not_atomic": (
        "api checks the idempotency key with a plain SELECT and records it only after "
        "the transfer, so two concurrent requests with one key both execute",
        "an idempotency key moves money at most once (double charge)",
    ),
    "outbox_outside_tx": (
        "api writes the outbox row in a second transaction after the transfer commits; "
        "a crash or a lost connection in between loses the event",
        "every committed transfer has exactly one outbox event",
    ),
    "worker_ack_before_apply": (
        "worker XACKs an entry before applying it; a worker killed in between loses it",
        "every event is applied exactly once (projections converge to the ledger)",
    ),
    "non_negative_in_python": (
        "api reads the balance without a row lock and checks it in Python before the "
        "transaction; concurrent transfers all pass the check",
        "no non-negative account goes below zero",
    ),
    "relay_drops_on_error": (
        "relay marks a batch published even when XADD failed (Redis down or reset)",
        "every outbox event reaches the stream",
    ),
    "audit_chain_skip": (
        "api appends audit rows reading the chain head without locking it, so concurrent "
        "appends fork the chain",
        "the audit log's hash chain is intact",
    ),
    "projection_double_apply": (
        "worker applies an event without recording/checking processed event ids, so "
        "redelivered or reclaimed entries are applied twice",
        "every event is applied exactly once (projections converge to the ledger)",
    ),
}
