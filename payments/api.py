"""The payments HTTP api (Starlette on uvicorn + uvloop + httptools).

Routes: accounts, transfers (idempotent), statements (read replica), admin (API key +
TOTP), health, readiness, metrics and the OpenAPI document. Every remote call goes
through ``resilience`` policies: the database and Redis through circuit breakers and
timeouts, the risk service through Fallback > CircuitBreaker > Retry > Timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import orjson
import redis.asyncio as aioredis
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from payments import _idempotency as idem
from payments import _input as inp
from payments import audit, ledger
from payments._admin import check_totp
from payments._config import Settings, load_settings
from payments._crypto import Sealer, hash_api_key
from payments._db import create_pool
from payments._errors import ApiError, error_body
from payments._http import HttpPool
from payments._merchant_keys import MerchantKeys
from payments._openapi import OPENAPI
from payments._policies import breaker, database_breaker, is_client_caused, risk_pipeline
from payments._replica import ReplicaReader
from payments._serve import serve_asgi, setup_logging
from resilience import CircuitOpenError, RejectedError

__all__ = ["Api", "create_app", "main"]

log = logging.getLogger("payments.api")

REQUESTS = Counter("payments_api_requests_total", "HTTP requests", ["route", "status"])
LATENCY = Histogram("payments_api_request_seconds", "HTTP request latency", ["route"],
                    buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5))
TRANSFERS = Counter("payments_transfers_total", "Transfer outcomes", ["outcome"])
RISK = Counter("payments_risk_decisions_total", "Risk decisions (incl. fallbacks)", ["decision"])
INFLIGHT = Gauge("payments_api_inflight_requests", "Requests being handled now")

_MAX_AMOUNT = 10**15
_JSON = "application/json"
_TRANSFER_FIELDS = frozenset({"from_account", "to_account", "amount", "currency"})
_ACCOUNT_FIELDS = frozenset({"currency", "holder", "non_negative"})


class RiskUnavailableError(Exception):
    """The risk service answered 5xx/429 or garbage."""


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    return Response(data, status_code=status, media_type=_JSON, headers=headers)


def _transfer_request(body: dict[str, Any]) -> dict[str, Any]:
    inp.unknown_fields(body, _TRANSFER_FIELDS)
    src = inp.account_id_field(body, "from_account")
    dst = inp.account_id_field(body, "to_account")
    amount = body.get("amount")
    if amount is None:
        raise ApiError(422, "missing_field", "amount is required", "amount")
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise ApiError(422, "invalid_field", "amount must be an integer in minor units", "amount")
    if not 0 < amount <= _MAX_AMOUNT:
        raise ApiError(422, "invalid_field", f"amount must be between 1 and {_MAX_AMOUNT}",
                       "amount")
    currency = inp.currency_field(body)
    if src == dst:
        raise ApiError(422, "same_account", "from_account and to_account must differ",
                       "to_account")
    return {"from_account": src, "to_account": dst, "amount": amount, "currency": currency}


class Api:
    """Process-wide state of the api: pools, clients, policies, caches."""

    def __init__(self, settings: Settings) -> None:
        self.s = settings
        self.sealer = Sealer(settings.encryption_key)
        self.pool: Any = None
        self.replica_pool: Any = None
        self.reader: ReplicaReader | None = None
        self.redis: Any = None
        self.risk: HttpPool | None = None
        self.db = database_breaker()
        self.redis_breaker = breaker("redis", minimum_calls=3, window=10, open_duration=2.0)
        store = None
        if settings.shared_breakers:
            from resilience import AsyncRedisBreakerStore

            store = AsyncRedisBreakerStore.from_url(settings.redis_url,
                                                    prefix="payments:breaker:")
        self.risk_policy = risk_pipeline(
            retry_on=(ConnectionError, RiskUnavailableError),
            timeout_s=settings.risk_timeout_s, fallback=self._risk_fallback, store=store)
        self.keys = MerchantKeys(settings.database_url)
        self._background: set[asyncio.Task[Any]] = set()

    # -- lifecycle ---------------------------------------------------------------------
    async def start(self) -> None:
        """Open pools lazily tolerant of a down database (readyz reports it)."""
        # min_size=0: the pools start even while a database is down; they connect on use.
        self.pool = await create_pool(self.s.database_url, max_size=self.s.db_pool_size)
        await self._warm(self.pool, 4)
        if self.s.replica_url:
            self.replica_pool = await create_pool(self.s.replica_url, max_size=5)
        self.reader = ReplicaReader(self.pool, self.replica_pool, self.s.replica_max_lag_s)
        self.reader.start()
        self.keys.start()
        self.redis = aioredis.from_url(self.s.redis_url, socket_timeout=1.0,
                                       socket_connect_timeout=1.0)
        if self.s.risk_url:
            self.risk = HttpPool(self.s.risk_url)

    @staticmethod
    async def _warm(pool: Any, n: int) -> None:
        conns: list[Any] = []
        try:
            for _ in range(n):
                conns.append(await asyncio.wait_for(pool.acquire(), 3))
        except Exception:  # a down database is reported by /readyz
            log.warning("database not reachable at start; will connect on first use")
        finally:
            for c in conns:
                await pool.release(c)

    async def stop(self) -> None:
        """Close everything we opened."""
        if self._background:
            await asyncio.wait(self._background, timeout=5)
        if self.reader is not None:
            await self.reader.stop()
        await self.keys.stop()
        for closer in (self.risk.aclose() if self.risk else None,
                       self.redis.aclose() if self.redis else None,
                       self.replica_pool.close() if self.replica_pool else None,
                       self.pool.close() if self.pool else None):
            if closer is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(closer, 5)

    # -- remote calls behind policies --------------------------------------------------
    async def on_db(self, work: Callable[[Any], Awaitable[Any]]) -> Any:
        """Run ``work(conn)`` through the database breaker; business errors pass through
        without counting as failures of the database."""

        async def guarded() -> tuple[Any, BaseException | None]:
            async with self.pool.acquire(timeout=2) as conn:
                try:
                    return await work(conn), None
                except (ApiError, ledger.LedgerError) as exc:
                    return None, exc

        result, refusal = await self.db.call_async(guarded)
        if refusal is not None:
            raise refusal
        return result

    def _risk_fallback(self, exc: BaseException | None) -> dict[str, Any]:
        decision = "review" if self.s.risk_fallback == "accept" else "decline"
        return {"decision": decision, "reason": "risk_unavailable",
                "error": type(exc).__name__}

    async def _score_once(self, payload: dict[str, Any]) -> dict[str, Any]:
        assert self.risk is not None
        status, content = await self.risk.post("/v1/score", orjson.dumps(payload))
        if status >= 500 or status == 429:
            raise RiskUnavailableError(f"risk answered {status}")
        try:
            result: dict[str, Any] = orjson.loads(content)
            if result.get("decision") not in ("approve", "decline"):
                raise ValueError("no decision")
        except (orjson.JSONDecodeError, ValueError, AttributeError) as exc:
            raise RiskUnavailableError("risk answered garbage") from exc
        return result

    async def score(self, payload: dict[str, Any]) -> dict[str, Any]:
        """The risk decision: approve | decline | review (fallback when risk is down)."""
        if self.risk is None:
            return {"decision": "approve", "reason": "risk_disabled"}
        result: dict[str, Any] = await self.risk_policy.call_async(self._score_once, payload)
        RISK.labels(result["decision"]).inc()
        return result

    # -- authentication ----------------------------------------------------------------
    def _bearer(self, request: Request) -> str:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(401, "unauthorized", "missing or malformed Authorization header",
                           headers={"WWW-Authenticate": "Bearer"})
        return token.strip()

    async def merchant(self, request: Request) -> str:
        """The merchant id the bearer key belongs to (cached; a revocation evicts it at
        once, see ``payments._merchant_keys``)."""
        digest = hash_api_key(self._bearer(request))
        cached = self.keys.get(digest)
        if cached is not None:
            return cached
        generation = self.keys.generation

        async def find(conn: Any) -> Any:
            return await conn.fetchrow(
                "SELECT id, api_key_hash FROM merchants WHERE api_key_hash = $1", digest)

        row = await self.on_db(find)
        if row is None or not hmac.compare_digest(bytes(row["api_key_hash"]), digest):
            raise ApiError(401, "unauthorized", "invalid API key",
                           headers={"WWW-Authenticate": "Bearer"})
        self.keys.put(digest, str(row["id"]), generation)
        return str(row["id"])

    async def admin(self, request: Request) -> None:
        """Admin calls need the admin API key AND a TOTP code not used before (see
        ``payments._admin``: once per step, lockout after repeated wrong codes)."""
        digest = hash_api_key(self._bearer(request))

        async def load(conn: Any) -> Any:  # not cached: a re-seed rotates the credentials
            return await conn.fetchrow(
                "SELECT api_key_hash, totp_secret_enc FROM admin_credentials WHERE id = 1")

        row = await self.on_db(load)
        if row is None:
            raise ApiError(401, "unauthorized", "no admin credentials are provisioned")
        key_hash = bytes(row["api_key_hash"])
        if not hmac.compare_digest(key_hash, digest):
            raise ApiError(401, "unauthorized", "invalid admin API key")
        code = request.headers.get("x-totp", "").strip()
        if not code:
            raise ApiError(401, "totp_required", "admin calls need a TOTP code in X-TOTP",
                           "X-TOTP")
        secret = self.s.admin_totp_secret or self.sealer.open(
            bytes(row["totp_secret_enc"]), b"admin-totp").decode()

        async def check(conn: Any) -> None:
            await check_totp(conn, key_hash, secret, code,
                             max_failures=self.s.admin_totp_max_failures,
                             lockout_s=self.s.admin_lockout_s)

        await self.on_db(check)

    # -- accounts ----------------------------------------------------------------------
    async def create_account(self, request: Request) -> Response:
        """POST /v1/accounts: open a customer account (holder details sealed)."""
        merchant_id = await self.merchant(request)
        body = await inp.json_body(request)
        inp.unknown_fields(body, _ACCOUNT_FIELDS)
        currency = inp.currency_field(body)
        non_negative = body.get("non_negative", True)
        if not isinstance(non_negative, bool):
            raise ApiError(422, "invalid_field", "non_negative must be a boolean", "non_negative")
        holder = inp.holder_field(body)
        account_id = "acc_" + uuid.uuid4().hex
        sealed = (self.sealer.seal(orjson.dumps(holder), account_id.encode())
                  if holder is not None else None)

        async def insert(conn: Any) -> Any:
            async with conn.transaction():
                row = await conn.fetchrow(
                    "INSERT INTO accounts (id, merchant_id, currency, kind, non_negative, holder_enc)"
                    " VALUES ($1, $2, $3, 'customer', $4, $5) RETURNING created_at",
                    account_id, merchant_id, currency, non_negative, sealed)
                await audit.append(conn, "account", account_id, "opened",
                                   {"account_id": account_id, "merchant_id": merchant_id,
                                    "currency": currency, "non_negative": non_negative})
                return row

        row = await self.on_db(insert)
        return _json(201, {"id": account_id, "merchant_id": merchant_id, "currency": currency,
                           "kind": "customer", "non_negative": non_negative, "balance": 0,
                           "holder": holder, "created_at": row["created_at"].isoformat()})

    def _account_view(self, row: Any) -> dict[str, Any]:
        holder = None
        if row["holder_enc"] is not None:
            holder = orjson.loads(self.sealer.open(bytes(row["holder_enc"]), row["id"].encode()))
        return {"id": row["id"], "merchant_id": row["merchant_id"],
                "currency": row["currency"].strip(), "kind": row["kind"],
                "non_negative": row["non_negative"], "balance": row["balance"],
                "holder": holder, "created_at": row["created_at"].isoformat()}

    async def get_account(self, request: Request) -> Response:
        """GET /v1/accounts/{id}: one of the caller's accounts."""
        merchant_id = await self.merchant(request)
        account_id = inp.path_id(request, "account")

        async def fetch(conn: Any) -> Any:
            return await conn.fetchrow("SELECT * FROM accounts WHERE id = $1", account_id)

        row = await self.on_db(fetch)
        if row is None or row["merchant_id"] != merchant_id:  # no existence oracle
            raise ApiError(404, "not_found", "no such account", "id")
        return _json(200, self._account_view(row))

    async def statement(self, request: Request) -> Response:
        """GET /v1/accounts/{id}/statement: balances and recent entries (replica first)."""
        merchant_id = await self.merchant(request)
        account_id = inp.path_id(request, "account")
        limit = inp.statement_limit(request)
        assert self.reader is not None

        async def work(pool: Any) -> Any:
            async with pool.acquire(timeout=2) as conn:
                acc = await conn.fetchrow(
                    "SELECT a.id, a.merchant_id, a.currency, a.balance, p.balance AS projected"
                    " FROM accounts a LEFT JOIN projections p ON p.account_id = a.id"
                    " WHERE a.id = $1", account_id)
                if acc is None:
                    return None, []
                entries = await conn.fetch(
                    "SELECT e.id, e.transfer_id, e.amount, t.created_at FROM entries e"
                    " JOIN transfers t ON t.id = e.transfer_id WHERE e.account_id = $1"
                    " ORDER BY e.id DESC LIMIT $2", account_id, limit)
                return acc, entries

        (acc, entries), source = await self.reader.read(work)
        if acc is None and source == "replica":
            # Not replayed yet (an account opened a moment ago): the primary knows.
            acc, entries = await work(self.pool)
            source = "primary"
        if acc is None or acc["merchant_id"] != merchant_id:
            raise ApiError(404, "not_found", "no such account", "id")
        return _json(200, {
            "account_id": acc["id"], "currency": acc["currency"].strip(),
            "balance": acc["balance"], "projected_balance": acc["projected"], "source": source,
            "entries": [{"id": e["id"], "transfer_id": e["transfer_id"], "amount": e["amount"],
                         "created_at": e["created_at"].isoformat()} for e in entries]})

    # -- transfers ---------------------------------------------------------------------
    async def get_transfer(self, request: Request) -> Response:
        """GET /v1/transfers/{id}: one of the caller's transfers."""
        merchant_id = await self.merchant(request)
        transfer_id = inp.path_id(request, "transfer")

        async def fetch(conn: Any) -> Any:
            return await conn.fetchrow("SELECT * FROM transfers WHERE id = $1", transfer_id)

        row = await self.on_db(fetch)
        if row is None or row["merchant_id"] != merchant_id:
            raise ApiError(404, "not_found", "no such transfer", "id")
        return _json(200, {k: (v.isoformat() if k == "created_at" else
                               v.strip() if k == "currency" else v) for k, v in row.items()})

    async def create_transfer(self, request: Request) -> Response:
        """POST /v1/transfers: move money, at most once per Idempotency-Key."""
        merchant_id = await self.merchant(request)
        key = inp.idempotency_key(request)
        req = _transfer_request(await inp.json_body(request))
        req_hash = idem.request_hash(req)
        if self.s.bug("idempotency_not_atomic"):
            return await self._transfer_unclaimed(merchant_id, key, req, req_hash)

        async def take(conn: Any) -> idem.Claim | idem.Existing:
            return await idem.claim(conn, merchant_id, key, req_hash,
                                    lease_s=self.s.idempotency_lease_s,
                                    ttl_s=self.s.idempotency_ttl_s)

        got = await self.on_db(take)
        if isinstance(got, idem.Existing):
            return self._answer_existing(got, req_hash)
        token = got.token
        background = False
        try:
            response, background = await self._transfer_claimed(merchant_id, key, req, token)
            return response
        except BaseException:
            if not background:
                await self._release(merchant_id, key, token)
            raise

    def _answer_existing(self, got: idem.Existing, req_hash: str) -> Response:
        if got.request_hash != req_hash:
            TRANSFERS.labels("key_reused").inc()
            raise ApiError(422, "idempotency_key_reused",
                           "this Idempotency-Key was used with a different request body",
                           "Idempotency-Key")
        if got.state != "done":
            TRANSFERS.labels("in_flight").inc()
            raise ApiError(409, "request_in_flight",
                           "a request with this Idempotency-Key is still being processed",
                           "Idempotency-Key", headers={"Retry-After": "1"})
        TRANSFERS.labels("replayed").inc()
        return _json(int(got.status_code or 500), (got.response_body or "{}").encode(),
                     headers={"Idempotent-Replayed": "true"})

    async def _release(self, merchant_id: str, key: str, token: str) -> None:
        async def rel(conn: Any) -> None:
            await idem.release(conn, merchant_id, key, token)

        try:
            await asyncio.shield(self.on_db(rel))
        except Exception:  # the lease expires and frees the key anyway
            log.warning("could not release idempotency key; it frees when its lease expires")

    async def _refuse(self, merchant_id: str, key: str, token: str,
                      exc: ledger.LedgerError | ApiError) -> Response:
        """Record a final refusal (no money moved) so replays return the same answer."""
        body = error_body(exc.code, exc.message, exc.field).decode()

        async def fin(conn: Any) -> bool:
            return await idem.finish(conn, merchant_id, key, token, exc.status, body)

        await self.on_db(fin)
        TRANSFERS.labels(exc.code).inc()
        return _json(exc.status, body.encode())

    async def _transfer_claimed(self, merchant_id: str, key: str, req: dict[str, Any],
                                token: str) -> tuple[Response, bool]:
        if self.s.bug("non_negative_in_python"):
            # BUG(non_negative_in_python): check on an unlocked read, outside the tx.
            async def precheck(conn: Any) -> None:
                accounts = await ledger.read_accounts(conn, [req["from_account"], req["to_account"]])
                ledger.check_transfer(ledger.Transfer(merchant_id=merchant_id, **req), accounts)

            try:
                await self.on_db(precheck)
            except ledger.LedgerError as exc:
                return await self._refuse(merchant_id, key, token, exc), False
        risk = await self.score({"merchant_id": merchant_id, **req})
        if risk["decision"] == "decline":
            why = ("the risk service is unavailable and the fallback policy declines"
                   if risk.get("reason") == "risk_unavailable"
                   else "the transfer was declined by risk checks")
            refusal = ApiError(402, "risk_declined", why)
            return await self._refuse(merchant_id, key, token, refusal), False
        t = ledger.Transfer.new(merchant_id=merchant_id, idempotency_key=key,
                                status="review" if risk["decision"] == "review" else "posted",
                                **req)
        body = orjson.dumps(ledger.transfer_body(t))
        completion = ledger.IdempotencyCompletion(key, token, 201, body.decode())

        async def post(conn: Any) -> None:
            # One statement, its own transaction (see migrations/0003_ledger_post.sql).
            racy = self.s.bug("audit_chain_skip")
            async with conn.transaction() if racy else contextlib.nullcontext():
                await ledger.post_transfer(
                    conn, t, completion=completion,
                    lock=not self.s.bug("non_negative_in_python"),
                    with_outbox=not self.s.bug("outbox_outside_tx"), racy_audit=racy)
            if self.s.bug("outbox_outside_tx"):
                # BUG(outbox_outside_tx): a second transaction; its failure is swallowed.
                try:
                    await ledger.insert_outbox(conn, t)
                except Exception:
                    log.warning("outbox insert failed after commit (bug outbox_outside_tx)")

        if self.s.bug("ack_before_commit"):
            # BUG(ack_before_commit): answer now, commit later, never report the outcome.
            async def later() -> None:
                try:
                    await self.on_db(post)
                except BaseException:
                    await self._release(merchant_id, key, token)

            task = asyncio.create_task(later())
            self._background.add(task)
            task.add_done_callback(self._background.discard)
            TRANSFERS.labels(t.status).inc()
            return _json(201, body), True
        try:
            await self.on_db(post)
        except ledger.LedgerError as exc:
            return await self._refuse(merchant_id, key, token, exc), False
        TRANSFERS.labels(t.status).inc()
        return _json(201, body), False

    async def _transfer_unclaimed(self, merchant_id: str, key: str, req: dict[str, Any],
                                  req_hash: str) -> Response:
        """BUG(idempotency_not_atomic): check-then-act on the key, no claim."""

        async def look(conn: Any) -> idem.Existing | None:
            return await idem.lookup(conn, merchant_id, key)

        got = await self.on_db(look)
        if got is not None:
            return self._answer_existing(got, req_hash)
        risk = await self.score({"merchant_id": merchant_id, **req})
        if risk["decision"] == "decline":
            raise ApiError(402, "risk_declined", "the transfer was declined by risk checks")
        t = ledger.Transfer.new(merchant_id=merchant_id, idempotency_key=key,
                                status="review" if risk["decision"] == "review" else "posted",
                                **req)
        body = orjson.dumps(ledger.transfer_body(t))

        async def post(conn: Any) -> None:
            async with conn.transaction():
                await ledger.post_transfer(conn, t, completion=None)
                await idem.store_done(conn, merchant_id, key, req_hash, 201, body.decode(),
                                      self.s.idempotency_ttl_s)

        await self.on_db(post)
        TRANSFERS.labels(t.status).inc()
        return _json(201, body)

    # -- admin -------------------------------------------------------------------------
    async def audit_verify(self, request: Request) -> Response:
        """GET /v1/admin/audit/verify: walk the audit hash chain (admin + TOTP)."""
        await self.admin(request)

        async def rows(conn: Any) -> list[Any]:
            return list(await conn.fetch(
                "SELECT seq, entity, entity_id, action, payload, prev_hash, hash"
                " FROM audit_log ORDER BY seq"))

        found = await self.on_db(rows)
        problems = audit.verify_chain(dict(r) for r in found)
        return _json(200, {"intact": not problems, "rows": len(found), "problems": problems[:50]})

    async def review_queue(self, request: Request) -> Response:
        """GET /v1/admin/transfers/review: transfers accepted unscored (admin + TOTP)."""
        await self.admin(request)

        async def rows(conn: Any) -> list[Any]:
            return list(await conn.fetch(
                "SELECT id, merchant_id, amount, currency, created_at FROM transfers"
                " WHERE status = 'review' ORDER BY created_at LIMIT 500"))

        found = await self.on_db(rows)
        return _json(200, {"transfers": [
            {**dict(r), "currency": r["currency"].strip(),
             "created_at": r["created_at"].isoformat()} for r in found]})

    # -- operations --------------------------------------------------------------------
    async def healthz(self, request: Request) -> Response:
        """GET /healthz: the process is alive."""
        return _json(200, {"ok": True})

    async def readyz(self, request: Request) -> Response:
        """GET /readyz: the database and Redis answer."""
        checks: dict[str, str] = {}

        async def db(conn: Any) -> None:
            await conn.fetchval("SELECT 1", timeout=1)

        async def ping() -> None:
            await asyncio.wait_for(self.redis.ping(), 1.0)

        for name, call in (("database", lambda: self.on_db(db)),
                           ("redis", lambda: self.redis_breaker.call_async(ping))):
            try:
                await call()
                checks[name] = "ok"
            except Exception as exc:  # readiness reports, never raises
                checks[name] = type(exc).__name__
        ok = all(v == "ok" for v in checks.values())
        return _json(200 if ok else 503, {"ready": ok, "checks": checks})

    async def metrics(self, request: Request) -> Response:
        """GET /metrics: Prometheus exposition."""
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    async def openapi(self, request: Request) -> Response:
        """GET /openapi.json: the OpenAPI document."""
        return _json(200, OPENAPI)


def _client_caused(exc: asyncpg.PostgresError) -> Response:
    """A database refusal the request caused (validation should have caught it first):
    a 4xx, never a 503, so the client does not retry what cannot succeed."""
    state = str(exc.sqlstate)
    log.warning("database refused a request's input: SQLSTATE %s", state)
    if state.startswith("23"):
        return _json(409, error_body("conflict", "the request conflicts with stored data"))
    return _json(422, error_body("invalid_value",
                                 "a value in the request cannot be stored as given"))


def _body_unread(request: Request) -> bool:
    """The request came with a body the handler never read to its end."""
    headers = request.headers
    if inp.BODY_READ in request.scope:
        return False
    return ("transfer-encoding" in headers
            or headers.get("content-length", "0") not in ("", "0"))


def _endpoint(route: str, handler: Callable[[Request], Awaitable[Response]]
              ) -> Callable[[Request], Awaitable[Response]]:
    """Error mapping and metrics around a handler; clients never see a stack trace."""
    hist = LATENCY.labels(route)

    async def endpoint(request: Request) -> Response:
        started = time.perf_counter()
        INFLIGHT.inc()
        try:
            response = await handler(request)
        except (ApiError, ledger.LedgerError) as exc:
            headers = getattr(exc, "headers", None)
            response = _json(exc.status, error_body(exc.code, exc.message, exc.field), headers)
        except CircuitOpenError:
            response = _json(503, error_body("unavailable", "a dependency is unavailable; retry"),
                             {"Retry-After": "1"})
        except (RejectedError, OSError, TimeoutError, asyncpg.PostgresError,
                asyncpg.InterfaceError, ledger.ClaimLostError) as exc:
            if isinstance(exc, asyncpg.PostgresError) and is_client_caused(exc):
                response = _client_caused(exc)
            else:
                # One line, no traceback: under a drill these come by the thousand.
                log.warning("dependency failure on %s: %s", route, type(exc).__name__)
                response = _json(503, error_body("unavailable",
                                                 "a dependency failed; the request may be "
                                                 "retried with the same Idempotency-Key"),
                                 {"Retry-After": "1"})
        except Exception:
            log.exception("unhandled error on %s", route)
            response = _json(500, error_body("internal", "internal error"))
        finally:
            INFLIGHT.dec()
        if response.status_code >= 400 and _body_unread(request):
            # Refused before its body was read (e.g. 401): close rather than let the
            # server read and discard a body of any size to keep the connection.
            response.headers["Connection"] = "close"
        hist.observe(time.perf_counter() - started)
        REQUESTS.labels(route, str(response.status_code)).inc()
        return response

    return endpoint


def create_app(settings: Settings | None = None) -> Starlette:
    """The api ASGI app."""
    api = Api(settings or load_settings())

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await api.start()
        try:
            yield
        finally:
            await api.stop()

    def r(path: str, route: str, handler: Callable[[Request], Awaitable[Response]],
          method: str) -> Route:
        return Route(path, _endpoint(route, handler), methods=[method])

    routes = [
        r("/v1/accounts", "create_account", api.create_account, "POST"),
        r("/v1/accounts/{id}", "get_account", api.get_account, "GET"),
        r("/v1/accounts/{id}/statement", "statement", api.statement, "GET"),
        r("/v1/transfers", "create_transfer", api.create_transfer, "POST"),
        r("/v1/transfers/{id}", "get_transfer", api.get_transfer, "GET"),
        r("/v1/admin/audit/verify", "audit_verify", api.audit_verify, "GET"),
        r("/v1/admin/transfers/review", "review_queue", api.review_queue, "GET"),
        r("/healthz", "healthz", api.healthz, "GET"),
        r("/readyz", "readyz", api.readyz, "GET"),
        r("/metrics", "metrics", api.metrics, "GET"),
        r("/openapi.json", "openapi", api.openapi, "GET"),
    ]

    async def http_error(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 500)
        code = {404: "not_found", 405: "method_not_allowed"}.get(status, "http_error")
        # Starlette's 405 carries Allow; keep every header it set.
        return _json(status, error_body(code, str(getattr(exc, "detail", code))),
                     dict(getattr(exc, "headers", None) or {}))

    async def server_error(request: Request, exc: Exception) -> Response:
        log.error("unhandled error outside a route: %s", type(exc).__name__)
        return _json(500, error_body("internal", "internal error"))

    app = Starlette(routes=routes, lifespan=lifespan,
                    exception_handlers={HTTPException: http_error, Exception: server_error})
    app.state.api = api
    return app


def main() -> int:
    """Entry point of ``python -m payments.api``."""
    settings = load_settings()
    setup_logging("api")
    serve_asgi(create_app(settings), settings.host, settings.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
