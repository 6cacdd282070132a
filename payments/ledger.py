"""The double-entry ledger transaction: one transfer = two entries, an outbox event, an
audit row and (when called by the api) the idempotency record, all in ONE transaction.

Shared by the api, the seeder and benchmarks/stack.py, so the benchmark's "direct"
column measures exactly the transaction the api runs.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson

from payments import audit

__all__ = [
    "ClaimLostError",
    "IdempotencyCompletion",
    "LedgerError",
    "Transfer",
    "check_transfer",
    "event_payload",
    "insert_outbox",
    "lock_accounts",
    "post_transfer",
    "read_accounts",
    "transfer_body",
]


class LedgerError(Exception):
    """A transfer the ledger refuses; maps to a 4xx answer."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field


class ClaimLostError(Exception):
    """The idempotency claim was taken over (lease expired); this attempt must not commit."""

    # The database refused the commit as designed: a race between two holders of a key,
    # not a database failure (``payments._policies.is_client_caused`` reads this).
    sqlstate = "PT409"


@dataclass(frozen=True, slots=True)
class Transfer:
    """A validated transfer request plus the ids it will be stored under."""

    merchant_id: str
    from_account: str
    to_account: str
    amount: int
    currency: str
    idempotency_key: str | None = None
    status: str = "posted"  # posted | review (risk fallback accepted it unscored)
    id: str = ""
    event_id: str = ""
    created_at: datetime | None = None

    @staticmethod
    def new(**kw: Any) -> Transfer:
        """A transfer with fresh ids and timestamp."""
        return Transfer(id="tr_" + uuid.uuid4().hex, event_id=str(uuid.uuid4()),
                        created_at=datetime.now(UTC), **kw)


@dataclass(frozen=True, slots=True)
class IdempotencyCompletion:
    """Marks the claimed key done with this response, in the transfer's transaction."""

    key: str
    claim_token: str
    status_code: int
    response_body: str


def transfer_body(t: Transfer) -> dict[str, Any]:
    """The API representation of a transfer (also what idempotency replays)."""
    assert t.created_at is not None
    return {"id": t.id, "merchant_id": t.merchant_id, "idempotency_key": t.idempotency_key,
            "from_account": t.from_account, "to_account": t.to_account, "amount": t.amount,
            "currency": t.currency, "status": t.status, "created_at": t.created_at.isoformat()}


def event_payload(t: Transfer) -> str:
    """The outbox / stream event for a posted transfer."""
    return orjson.dumps({
        "event_id": t.event_id, "type": "transfer.posted", "transfer_id": t.id,
        "merchant_id": t.merchant_id, "currency": t.currency, "amount": t.amount,
        "legs": [[t.from_account, -t.amount], [t.to_account, t.amount]],
    }).decode()


_ACCOUNTS = ("SELECT id, merchant_id, currency, kind, non_negative, balance FROM accounts"
             " WHERE id = ANY($1::text[]) ORDER BY id")


async def lock_accounts(conn: Any, ids: list[str]) -> dict[str, Any]:
    """Row-lock both accounts in id order (one global lock order: no deadlocks)."""
    rows = await conn.fetch(_ACCOUNTS + " FOR UPDATE", ids)
    return {r["id"]: r for r in rows}


async def read_accounts(conn: Any, ids: list[str]) -> dict[str, Any]:
    """Read accounts without locking (only the ``non_negative_in_python`` bug does this)."""
    rows = await conn.fetch(_ACCOUNTS, ids)
    return {r["id"]: r for r in rows}


def check_transfer(t: Transfer, accounts: dict[str, Any]) -> None:
    """Raise ``LedgerError`` unless ``t`` may be posted given the (locked) accounts."""
    src, dst = accounts.get(t.from_account), accounts.get(t.to_account)
    # A merchant moves money only between its own accounts, and another merchant's
    # account is answered exactly like a missing one (no existence oracle); only an
    # issuance account (the platform's) credits other merchants' accounts. As ledger_post
    # (migrations/0005_ledger_own_accounts.sql).
    if src is None or src["merchant_id"] != t.merchant_id:
        raise LedgerError(404, "account_not_found", "from_account does not exist", "from_account")
    if dst is None or (dst["merchant_id"] != t.merchant_id and src["kind"] != "issuance"):
        raise LedgerError(404, "account_not_found", "to_account does not exist", "to_account")
    for acc, fld in ((src, "from_account"), (dst, "to_account")):
        if acc["currency"].strip() != t.currency:
            raise LedgerError(422, "currency_mismatch",
                              f"{fld} is in {acc['currency']}, not {t.currency}", fld)
    if src["non_negative"] and src["balance"] < t.amount:
        raise LedgerError(422, "insufficient_funds", "from_account has insufficient funds",
                          "amount")


_POST = "SELECT ledger_post(" + ", ".join(f"${i}" for i in range(1, 19)) + ")"


async def post_transfer(conn: Any, t: Transfer, *, completion: IdempotencyCompletion | None,
                        lock: bool = True, with_outbox: bool = True,
                        racy_audit: bool = False) -> None:
    """Post ``t``: one call of the ``ledger_post`` SQL function (migrations/0003).

    It locks and checks both accounts (unless ``lock`` is off: the
    ``non_negative_in_python`` bug, whose caller checked beforehand without a lock), then
    writes the transfer, its two entries, the balances, the outbox event, the idempotency
    completion and, last, the audit row. Outside a transaction it is its own transaction
    (one round trip); inside the caller's, it joins it. Refusals raise ``LedgerError``.
    """
    c = completion
    payload = audit.canonical_payload(
        {"transfer_id": t.id, "merchant_id": t.merchant_id, "from_account": t.from_account,
         "to_account": t.to_account, "amount": t.amount, "currency": t.currency,
         "status": t.status})
    try:
        await conn.fetchval(
            _POST, t.id, t.merchant_id, t.idempotency_key, t.from_account, t.to_account,
            t.amount, t.currency, t.status, t.created_at, t.event_id, event_payload(t),
            c.claim_token if c else None, c.status_code if c else None,
            c.response_body if c else None, payload, lock, with_outbox, not racy_audit)
    except asyncpg.PostgresError as exc:
        state = str(getattr(exc, "sqlstate", "") or "")
        if state == "PT409":
            raise ClaimLostError(str(getattr(exc, "detail", ""))) from None
        if state.startswith("PT") and state[2:].isdigit():
            raise LedgerError(int(state[2:]), str(getattr(exc, "message", "refused")),
                              str(getattr(exc, "detail", "") or "refused"),
                              getattr(exc, "hint", None)) from None
        raise
    if racy_audit:
        # BUG(audit_chain_skip): the caller holds a transaction around both calls.
        await audit.append(conn, "transfer", t.id, "posted", payload, racy=True)


async def insert_outbox(conn: Any, t: Transfer) -> None:
    """Write the outbox row on its own (only the ``outbox_outside_tx`` bug does this)."""
    await conn.execute("INSERT INTO outbox (event_id, transfer_id, payload) VALUES ($1, $2, $3)",
                       t.event_id, t.id, event_payload(t))
