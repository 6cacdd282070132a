"""The wallet's tables, beside hordak's books (``hordak_account``, ``_transaction``, ``_leg``).

- :class:`Client`: an application calling the API (its bearer token); it owns wallets.
- :class:`Wallet`: one hordak account and the balance row that guards it. The balance
  is *credit-normal*: what the platform owes the wallet's holder. The funding wallet
  (money arriving from the bank) may go negative: its balance is minus what entered.
- :class:`Payment`: a request to move money, completed (with its hordak transaction)
  or declined (no transaction, the decline kept so that a retry gets the same answer).
- :class:`IdempotencyRecord`: one per (client, key), with the request's fingerprint and
  the response given; its unique index is what serialises two requests with one key.

No CHECK constraint keeps balances non-negative: in production it would be the second
line of defence; here the row lock is the only one, so that a drill has something to
catch when it is taken away (``WALLET_BUGS=unlocked_balance_check``).
"""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone
from djmoney.models.fields import MoneyField

__all__ = ["Client", "IdempotencyRecord", "Payment", "Wallet", "Webhook"]


class Client(models.Model):
    """An application that calls the wallet API with its bearer token."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=100)
    api_token = models.CharField(max_length=64, unique=True)


class Wallet(models.Model):
    """A customer's wallet (or the platform's funding account) and its balance row."""

    class Kind(models.TextChoices):
        CUSTOMER = "customer"
        FUNDING = "funding"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    client = models.ForeignKey(Client, on_delete=models.PROTECT, related_name="wallets")
    account = models.OneToOneField("hordak.Account", on_delete=models.PROTECT,
                                   related_name="wallet")
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.CUSTOMER)
    currency = models.CharField(max_length=3, default="EUR")
    #: minor units (cents), credit-normal; changed only with the legs that justify it
    balance_minor = models.BigIntegerField(default=0)
    allow_negative = models.BooleanField(default=False)


class Payment(models.Model):
    """Money asked to move from ``payer`` to ``payee``, and what became of it."""

    class Kind(models.TextChoices):
        PAYMENT = "payment"
        TOPUP = "topup"

    class Status(models.TextChoices):
        COMPLETED = "completed"
        DECLINED = "declined"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    client = models.ForeignKey(Client, on_delete=models.PROTECT, related_name="payments")
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.PAYMENT)
    #: the key it was made under (for reports); uniqueness lives in IdempotencyRecord
    idempotency_key = models.CharField(max_length=255, null=True, blank=True, db_index=True)
    payer = models.ForeignKey(Wallet, on_delete=models.PROTECT, related_name="+")
    payee = models.ForeignKey(Wallet, on_delete=models.PROTECT, related_name="+")
    amount = MoneyField(max_digits=13, decimal_places=2, default_currency="EUR")
    status = models.CharField(max_length=10, choices=Status.choices)
    decline_reason = models.CharField(max_length=40, blank=True, default="")
    transaction = models.OneToOneField("hordak.Transaction", null=True, blank=True,
                                       on_delete=models.PROTECT, related_name="payment")
    created = models.DateTimeField(default=timezone.now)


class IdempotencyRecord(models.Model):
    """A client's idempotency key: the request it was first used for, and the answer."""

    client = models.ForeignKey(Client, on_delete=models.PROTECT, related_name="+")
    key = models.CharField(max_length=255)
    #: SHA-256 of the canonical request (method, path, body)
    request_hash = models.CharField(max_length=64)
    response_status = models.SmallIntegerField(null=True)
    response_body = models.JSONField(null=True)
    payment = models.OneToOneField(Payment, null=True, on_delete=models.PROTECT,
                                   related_name="+")
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["client", "key"],
                                               name="wallet_idempotency_client_key")]


class Webhook(models.Model):
    """A ``payment.completed`` event for the client's backend (a transactional outbox:
    written in the payment's own transaction, sent afterwards by the notifier, retried
    until the receiver answers 2xx; so delivered at least once, maybe more)."""

    event_id = models.UUIDField(unique=True, default=uuid.uuid4, editable=False)
    client = models.ForeignKey(Client, on_delete=models.PROTECT, related_name="+")
    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="webhooks")
    payload = models.JSONField()
    created = models.DateTimeField(default=timezone.now)
    #: the receiver answered 2xx (or, with the marked-before-send bug, a send was tried)
    delivered_at = models.DateTimeField(null=True, blank=True)
    attempts = models.IntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    #: a notifier has claimed it until then (another may take it over afterwards)
    lease_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["next_attempt_at"], name="wallet_webhook_due",
                                condition=models.Q(delivered_at__isnull=True))]
