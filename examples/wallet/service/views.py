"""The wallet's HTTP API (JSON; errors are ``{"error": {"code", "message"}}``).

======================================  ==================================================
``POST /v1/payments``                   ``Idempotency-Key`` required; body ``{"payer",
                                        "payee", "amount": "12.34", "currency": "EUR"}``;
                                        201 the payment, 402 declined (insufficient
                                        funds, kept under the key), 422 invalid or the key
                                        reused with another body; a replay answers the
                                        stored response with ``Idempotent-Replayed: true``
``GET /v1/wallets/<id>``                the wallet and its balance
``GET /v1/wallets/<id>/statement``      its last legs with the balance after each
                                        (hordak's ``GET_BALANCE``), ``?limit=`` (≤ 100)
``GET /healthz`` / ``GET /readyz``      alive / the database answers
======================================  ==================================================

Authentication: ``Authorization: Bearer <client token>``; a client sees only its own
wallets (another's is 404). A database that cannot be reached answers 503: the client
does not know whether its payment happened and retries with the same key.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import DatabaseError, IntegrityError, connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET, require_POST
from hordak.models import Leg

from . import ledger
from .models import Client, Payment, Wallet

__all__ = ["JsonErrors", "health", "payment_create", "payment_detail", "ready",
           "wallet_detail", "wallet_statement"]

log = logging.getLogger("wallet.api")

#: the largest amount one payment may move, in minor units (hordak's 13 digits)
MAX_AMOUNT_MINOR = 10**11
_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")


def _error(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse({"error": {"code": code, "message": message}}, status=status)


class JsonErrors:
    """Every failure is JSON: a database that cannot be reached is 503 (the outcome is
    unknown to the client), anything else unexpected 500."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exc: Exception) -> HttpResponse:
        if isinstance(exc, DatabaseError) and not isinstance(exc, IntegrityError):
            log.warning("database error on %s %s: %s", request.method, request.path, exc)
            return _error(503, "database_unavailable", "try again with the same key")
        log.exception("unexpected error on %s %s", request.method, request.path)
        return _error(500, "internal", type(exc).__name__)



def handler404(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return _error(404, "not_found", "no such resource")


def handler500(request: HttpRequest) -> HttpResponse:
    return _error(500, "internal", "internal error")


def _client(request: HttpRequest) -> Client | None:
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        return None
    return Client.objects.filter(api_token=header[7:].strip()).first()


def _uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def _parse(body: Any) -> ledger.PaymentRequest | str:
    """The request, or what is wrong with it."""
    if not isinstance(body, dict):
        return "the body must be a JSON object"
    payer, payee = _uuid(body.get("payer")), _uuid(body.get("payee"))
    if payer is None or payee is None:
        return "payer and payee must be wallet ids"
    if payer == payee:
        return "payer and payee must differ"
    raw = body.get("amount")
    if not isinstance(raw, str):
        return "amount must be a decimal string, e.g. \"12.34\""
    try:
        amount = Decimal(raw)
    except InvalidOperation:
        return "amount must be a decimal string"
    if not amount.is_finite() or amount <= 0 or amount != amount.quantize(Decimal("0.01")):
        return "amount must be positive with at most two decimals"
    minor = int(amount * 100)
    if minor > MAX_AMOUNT_MINOR:
        return "amount is too large"
    if body.get("currency") != "EUR":
        return "currency must be EUR"
    return ledger.PaymentRequest(payer, payee, minor, "EUR")


def _answer(answer: ledger.Answer) -> JsonResponse:
    response = JsonResponse(answer.body, status=answer.status)
    for name, value in answer.headers.items():
        response[name] = value
    return response


@require_POST
def payment_create(request: HttpRequest) -> HttpResponse:
    client = _client(request)
    if client is None:
        return _error(401, "unauthorized", "a valid bearer token is required")
    key = request.headers.get("Idempotency-Key", "")
    if not _KEY.match(key):
        return _error(400, "idempotency_key_required", "send an Idempotency-Key header")
    try:
        body = json.loads(request.body or b"null")
    except ValueError:
        return _error(400, "bad_json", "the body is not JSON")
    parsed = _parse(body)
    if isinstance(parsed, str):
        return _error(422, "invalid_request", parsed)
    owned = set(Wallet.objects.filter(client=client, id__in=(parsed.payer, parsed.payee))
                .values_list("id", flat=True))
    if owned != {parsed.payer, parsed.payee}:
        return _error(404, "wallet_not_found", "no such wallet of this client")
    request_hash = ledger.fingerprint("POST", request.path, body)
    return _answer(ledger.pay(client, parsed, key, request_hash))


def _own_wallet(request: HttpRequest, wallet_id: uuid.UUID) -> Wallet | HttpResponse:
    client = _client(request)
    if client is None:
        return _error(401, "unauthorized", "a valid bearer token is required")
    wallet = Wallet.objects.filter(client=client, id=wallet_id).first()
    if wallet is None:
        return _error(404, "wallet_not_found", "no such wallet of this client")
    return wallet


@require_GET
def wallet_detail(request: HttpRequest, wallet_id: uuid.UUID) -> HttpResponse:
    wallet = _own_wallet(request, wallet_id)
    if isinstance(wallet, HttpResponse):
        return wallet
    return JsonResponse({"id": str(wallet.id), "currency": wallet.currency,
                         "balance": f"{ledger.to_decimal(wallet.balance_minor):.2f}"})


@require_GET
def wallet_statement(request: HttpRequest, wallet_id: uuid.UUID) -> HttpResponse:
    wallet = _own_wallet(request, wallet_id)
    if isinstance(wallet, HttpResponse):
        return wallet
    try:
        limit = max(1, min(int(request.GET.get("limit", "20")), 100))
    except ValueError:
        return _error(422, "invalid_request", "limit must be a number")
    legs = (Leg.objects.filter(account_id=wallet.account_id).with_account_balance_after()
            .select_related("transaction").order_by("-id")[:limit])
    lines = [{"leg": str(leg.uuid), "type": leg.type_short,
              "amount": f"{leg.amount.amount:.2f}", "date": leg.transaction.date.isoformat(),
              "balance_after": str(leg.account_balance_after)} for leg in legs]
    return JsonResponse({"wallet": str(wallet.id), "legs": lines})


@require_GET
def payment_detail(request: HttpRequest, payment_id: uuid.UUID) -> HttpResponse:
    client = _client(request)
    if client is None:
        return _error(401, "unauthorized", "a valid bearer token is required")
    payment = Payment.objects.filter(client=client, id=payment_id).first()
    if payment is None:
        return _error(404, "payment_not_found", "no such payment of this client")
    return JsonResponse(ledger.render(payment))


def health(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"status": "ok"})


def ready(request: HttpRequest) -> HttpResponse:
    with connection.cursor() as cur:
        cur.execute("SELECT 1")
    return JsonResponse({"status": "ready"})
