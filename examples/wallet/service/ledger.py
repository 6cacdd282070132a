"""Moving money: one payment = one PostgreSQL transaction.

Idempotency here is not a claim-then-settle protocol (no "in flight" state, no 409):
the key's row is inserted *in the same transaction* that moves the money, first thing.
A second request with the same key blocks on the unique index until the first commits
(then it reads the stored answer and replays it) or rolls back (then it proceeds as
the first). Whatever the network does to the commit's acknowledgement, the key and the
money are both there or both absent.

Money moves under row locks: both wallets' balance rows are locked in a fixed order
(``SELECT ... ORDER BY id FOR UPDATE``) before the funds check, so concurrent payments
from one wallet queue up instead of both spending the same balance, and two payments
in opposite directions cannot deadlock. The books are hordak's: a transaction with a
debit leg on the payer's account and a credit leg on the payee's, which PostgreSQL
itself refuses to commit unless they balance (hordak's deferred ``check_leg`` trigger).
A completed payment also writes its ``payment.completed`` webhook in that transaction
(a transactional outbox; ``notifier.py`` sends it).
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import F
from hordak.models import Leg
from hordak.models import Transaction as BookTransaction
from moneyed import Money

from .models import Client, IdempotencyRecord, Payment, Wallet, Webhook

__all__ = ["Answer", "PaymentRequest", "fingerprint", "pay", "to_decimal", "topup"]

log = logging.getLogger("wallet.ledger")


@dataclass(frozen=True, slots=True)
class PaymentRequest:
    """A validated request to move ``amount_minor`` from ``payer`` to ``payee``."""

    payer: uuid.UUID
    payee: uuid.UUID
    amount_minor: int
    currency: str


@dataclass(frozen=True, slots=True)
class Answer:
    """What the API answers: status, JSON body, and whether it is a stored one."""

    status: int
    body: dict[str, Any]
    replayed: bool = False
    headers: dict[str, str] = field(default_factory=dict)


def to_decimal(minor: int) -> Decimal:
    """Minor units (cents) as the decimal amount hordak stores."""
    return Decimal(minor).scaleb(-2)


def fingerprint(method: str, path: str, body: Any) -> str:
    """SHA-256 of the canonical request: the same body in any key order is the same."""
    canonical = json.dumps([method, path, body], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def render(payment: Payment) -> dict[str, Any]:
    """A payment as the API shows it (and as it is stored for replays)."""
    body: dict[str, Any] = {
        "id": str(payment.id), "payer": str(payment.payer_id), "payee": str(payment.payee_id),
        "amount": f"{payment.amount.amount:.2f}", "currency": str(payment.amount.currency),
        "status": payment.status, "created": payment.created.isoformat(),
    }
    if payment.decline_reason:
        body["decline_reason"] = payment.decline_reason
    return body


def _error(status: int, code: str, message: str, **extra: Any) -> Answer:
    return Answer(status, {"error": {"code": code, "message": message}, **extra})


def _lock_wallets(req: PaymentRequest) -> dict[uuid.UUID, Wallet]:
    """Both wallets' balance rows, locked in id order (no deadlock between opposite
    payments); with the ``unlocked_balance_check`` bug, merely read."""
    wallets = Wallet.objects.filter(id__in=(req.payer, req.payee)).order_by("id")
    if "unlocked_balance_check" not in settings.WALLET_BUGS:
        wallets = wallets.select_for_update()
    return {w.id: w for w in wallets}


def _move(client: Client, req: PaymentRequest, key: str | None,
          kind: str = Payment.Kind.PAYMENT) -> tuple[Answer, Payment]:
    """Inside the caller's transaction: the funds check, the legs, the balance rows and
    the payment row. A decline is a payment row too (without legs)."""
    wallets = _lock_wallets(req)
    payer, payee = wallets[req.payer], wallets[req.payee]
    amount = Money(to_decimal(req.amount_minor), req.currency)
    common = {"client": client, "kind": kind, "idempotency_key": key, "payer": payer,
              "payee": payee, "amount": amount}
    if payer.balance_minor < req.amount_minor and not payer.allow_negative:
        declined = Payment.objects.create(status=Payment.Status.DECLINED,
                                          decline_reason="insufficient_funds", **common)
        return _error(402, "insufficient_funds", "the payer's balance is too low",
                      payment=render(declined)), declined
    books = BookTransaction.objects.create(description=f"{kind} {key or ''}".strip())
    Leg.objects.create(transaction=books, account_id=payer.account_id, debit=amount)
    Leg.objects.create(transaction=books, account_id=payee.account_id, credit=amount)
    # relative updates: the row lock above made the check and these one decision
    Wallet.objects.filter(id=payer.id).update(balance_minor=F("balance_minor") - req.amount_minor)
    Wallet.objects.filter(id=payee.id).update(balance_minor=F("balance_minor") + req.amount_minor)
    payment = Payment.objects.create(status=Payment.Status.COMPLETED, transaction=books,
                                     **common)
    # the client's webhook, in the same transaction: sent by the notifier once committed
    event = uuid.uuid4()
    Webhook.objects.create(event_id=event, client=client, payment=payment, payload={
        "event_id": str(event), "type": "payment.completed", "payment": render(payment)})
    return Answer(201, render(payment)), payment


_CLAIM = """
INSERT INTO wallet_idempotencyrecord (client_id, key, request_hash, created)
VALUES (%s, %s, %s, now())
ON CONFLICT (client_id, key) DO NOTHING
RETURNING id
"""


def _claim(client: Client, key: str, request_hash: str) -> int | None:
    """Insert the key's row; ``None`` when it exists (after the transaction holding it
    has committed: the unique index makes us wait for it)."""
    with connection.cursor() as cur:
        cur.execute(_CLAIM, [client.id, key, request_hash])
        row = cur.fetchone()
    return int(row[0]) if row else None


def _replay(client: Client, key: str, request_hash: str) -> Answer:
    record = IdempotencyRecord.objects.get(client=client, key=key)
    if record.request_hash != request_hash:
        return _error(422, "idempotency_key_reused",
                      "this idempotency key was used for a different request")
    if record.response_status is None:  # only a record saved outside its payment's tx
        return _error(409, "in_progress", "a request with this key is in progress")
    return Answer(int(record.response_status), dict(record.response_body or {}),
                  replayed=True, headers={"Idempotent-Replayed": "true"})


def pay(client: Client, req: PaymentRequest, key: str, request_hash: str) -> Answer:
    """Make (or replay) the payment of ``key``: the key, the legs, the balances and the
    stored answer commit together."""
    if "idempotency_after_commit" in settings.WALLET_BUGS:
        return _pay_then_record(client, req, key, request_hash)
    with transaction.atomic():
        claimed = _claim(client, key, request_hash)
        if claimed is None:
            return _replay(client, key, request_hash)
        answer, payment = _move(client, req, key)
        IdempotencyRecord.objects.filter(id=claimed).update(
            response_status=answer.status, response_body=answer.body, payment=payment)
    return answer


def _pay_then_record(client: Client, req: PaymentRequest, key: str,
                     request_hash: str) -> Answer:
    """The bug: look the key up, pay, *then* save the key in a second transaction. When
    the payment's commit is acknowledged to PostgreSQL but the acknowledgement never
    reaches us, the client's retry finds no key and pays again."""
    if IdempotencyRecord.objects.filter(client=client, key=key).exists():
        return _replay(client, key, request_hash)
    with transaction.atomic():
        answer, payment = _move(client, req, key)
    try:
        IdempotencyRecord.objects.get_or_create(
            client=client, key=key,
            defaults={"request_hash": request_hash, "response_status": answer.status,
                      "response_body": answer.body, "payment": payment})
    except DatabaseError:  # "the payment went through; the record is only for retries"
        log.warning("could not save the idempotency record of %s", key)
    return answer


def topup(client: Client, funding: Wallet, wallet: Wallet, amount_minor: int) -> Payment:
    """Money arriving from outside: the funding wallet pays ``wallet`` (no key)."""
    req = PaymentRequest(funding.id, wallet.id, amount_minor, wallet.currency)
    with transaction.atomic():
        _, payment = _move(client, req, None, kind=Payment.Kind.TOPUP)
    return payment
