"""Service configuration, read once from environment variables (contracts §4)."""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass, field

__all__ = ["Settings", "load_settings"]

# A fixed development key so a bare `python -m payments.api` works; real deployments set
# PAYMENTS_ENCRYPTION_KEY. Derived, not literal, so it never looks like a real secret.
_DEV_KEY = hashlib.sha256(b"faultline-payments-development-only").digest()
_DEFAULT_DATABASE_URL = "postgresql://faultline:faultline@127.0.0.1:5432/payments"
_DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


def _env(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


def _float(name: str, default: float) -> float:
    raw = _env(name)
    return float(raw) if raw else default


def _int(name: str, default: int) -> int:
    raw = _env(name)
    return int(raw) if raw else default


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything a payment service is configured with; see contracts §4."""

    database_url: str = _DEFAULT_DATABASE_URL
    replica_url: str = ""
    redis_url: str = _DEFAULT_REDIS_URL
    risk_url: str = ""
    host: str = "127.0.0.1"
    port: int = 8000
    bugs: frozenset[str] = field(default_factory=frozenset)
    encryption_key: bytes = _DEV_KEY
    admin_totp_secret: str = ""
    risk_fallback: str = "accept"
    worker_name: str = "worker-1"
    risk_latency_ms: float = 0.0
    risk_decline_over: int = 0
    # Operational bounds; environment-overridable but not part of the contract.
    idempotency_ttl_s: float = 24 * 3600.0
    idempotency_lease_s: float = 30.0
    replica_max_lag_s: float = 5.0
    db_pool_size: int = 20
    relay_batch: int = 200
    relay_poll_s: float = 0.02
    worker_claim_idle_ms: int = 5000
    worker_max_deliveries: int = 5
    risk_timeout_s: float = 0.5
    shared_breakers: bool = False
    admin_totp_max_failures: int = 5
    admin_lockout_s: float = 300.0

    def bug(self, name: str) -> bool:
        """Whether the deliberate bug ``name`` is switched on (see payments.bugs)."""
        return name in self.bugs


def load_settings() -> Settings:
    """Read the environment into a ``Settings``."""
    raw_key = _env("PAYMENTS_ENCRYPTION_KEY")
    key = base64.b64decode(raw_key) if raw_key else _DEV_KEY
    if len(key) != 32:
        raise ValueError("PAYMENTS_ENCRYPTION_KEY must be base64 of exactly 32 bytes")
    fallback = _env("PAYMENTS_RISK_FALLBACK", "accept").lower()
    if fallback not in ("accept", "decline"):
        raise ValueError("PAYMENTS_RISK_FALLBACK must be 'accept' or 'decline'")
    bugs = frozenset(b.strip() for b in _env("PAYMENTS_BUGS").split(",") if b.strip())
    from payments.bugs import BUGS  # local: bugs.py imports nothing of ours

    unknown = bugs - set(BUGS)
    if unknown:
        raise ValueError(f"unknown PAYMENTS_BUGS: {sorted(unknown)}; known: {sorted(BUGS)}")
    return Settings(
        database_url=_env("PAYMENTS_DATABASE_URL", _DEFAULT_DATABASE_URL),
        replica_url=_env("PAYMENTS_REPLICA_URL"),
        redis_url=_env("PAYMENTS_REDIS_URL", _DEFAULT_REDIS_URL),
        risk_url=_env("PAYMENTS_RISK_URL"),
        host=_env("PAYMENTS_HOST", "127.0.0.1"),
        port=_int("PAYMENTS_PORT", 8000),
        bugs=bugs,
        encryption_key=key,
        admin_totp_secret=_env("PAYMENTS_ADMIN_TOTP_SECRET"),
        risk_fallback=fallback,
        worker_name=_env("PAYMENTS_WORKER_NAME", "worker-1"),
        risk_latency_ms=_float("PAYMENTS_RISK_LATENCY_MS", 0.0),
        risk_decline_over=_int("PAYMENTS_RISK_DECLINE_OVER", 0),
        idempotency_ttl_s=_float("PAYMENTS_IDEMPOTENCY_TTL_S", 24 * 3600.0),
        idempotency_lease_s=_float("PAYMENTS_IDEMPOTENCY_LEASE_S", 30.0),
        replica_max_lag_s=_float("PAYMENTS_REPLICA_MAX_LAG_S", 5.0),
        db_pool_size=_int("PAYMENTS_DB_POOL_SIZE", 20),
        worker_claim_idle_ms=_int("PAYMENTS_WORKER_CLAIM_IDLE_MS", 5000),
        worker_max_deliveries=_int("PAYMENTS_WORKER_MAX_DELIVERIES", 5),
        risk_timeout_s=_float("PAYMENTS_RISK_TIMEOUT_S", 0.5),
        shared_breakers=_env("PAYMENTS_SHARED_BREAKERS").lower() in ("1", "true", "yes"),
        admin_totp_max_failures=_int("PAYMENTS_ADMIN_TOTP_MAX_FAILURES", 5),
        admin_lockout_s=_float("PAYMENTS_ADMIN_LOCKOUT_S", 300.0),
    )
