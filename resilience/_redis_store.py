"""Breaker state shared across processes through Redis: `RedisBreakerStore` (redis-py's
sync client) and `AsyncRedisBreakerStore` (``redis.asyncio``).

One Redis hash per breaker, ``{prefix}{name}``, with the fields of `SharedState`::

    s  state        "closed" | "open" | "half_open" | "forced_open" | "disabled"
    o  opened_at    float seconds, "" when not open
    u  open_until   float seconds, "" when not open
    v  version      int, grows by one per published transition

``load`` is one ``HMGET`` round trip. ``save`` is one Lua script, so the compare and the
write are atomic: a state is written only if its version is at least the stored one
(the rule `LocalStore` follows), so a slow process can never overwrite a newer
transition with an older one.

Why the store fails fast: the breaker consults the store on its hot path (at most once
per sync interval) and catches every store error — it keeps going on its local state and
emits ``BreakerStoreDegraded``. A dead Redis must therefore cost almost nothing. After any
Redis error the store answers `StoreUnavailableError` *without touching the network* for
``retry_interval`` seconds, then lets one call probe Redis again. A save that failed is
remembered (the newest per breaker) and re-published, still version-checked, as soon as
Redis answers, so a circuit opened during the outage reaches the other processes.

Short socket timeouts matter just as much: redis-py's defaults (5 s timeouts, 10 retries
with backoff) would stall a protected call for many seconds. `from_url` builds a client
with 100 ms timeouts and no retries; a client passed in is used as it is, and the store
logs a warning once if its timeouts look long.

``redis`` is imported only by ``from_url``: passing a client in needs no import here.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

from resilience._breaker_store import SharedState

__all__ = ["AsyncRedisBreakerStore", "RedisBreakerStore", "StoreUnavailableError"]

_log = logging.getLogger("resilience.redis_store")

DEFAULT_PREFIX = "resilience:breaker:"
DEFAULT_RETRY_INTERVAL = 1.0
DEFAULT_SOCKET_TIMEOUT = 0.1
# Above this, a client's timeouts make a Redis outage visible as latency; warn once.
_SLOW_TIMEOUT = 1.0
_FIELDS = ("s", "o", "u", "v")

# KEYS[1] = hash key; ARGV = version, state, opened_at, open_until, ttl_ms (0 = none).
# Returns 1 when written, 0 when a newer version is already stored.
_SAVE_LUA = """
local stored = tonumber(redis.call('HGET', KEYS[1], 'v'))
local version = tonumber(ARGV[1])
if stored and version < stored then
  return 0
end
redis.call('HSET', KEYS[1], 'v', ARGV[1], 's', ARGV[2], 'o', ARGV[3], 'u', ARGV[4])
local ttl = tonumber(ARGV[5])
if ttl > 0 then
  redis.call('PEXPIRE', KEYS[1], ttl)
end
return 1
"""


class StoreUnavailableError(ConnectionError):
    """Redis failed recently; the store is not trying again until ``retry_after`` seconds
    have passed. The breaker treats it like any store error (local state, degraded event).
    """

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message, retry_after)
        self.retry_after = retry_after

    def __str__(self) -> str:
        return f"{self.args[0]} (next attempt in {self.retry_after:.3f}s)"


def _encode(state: SharedState) -> list[str | int]:
    return [
        state.version,
        state.state,
        "" if state.opened_at is None else repr(state.opened_at),
        "" if state.open_until is None else repr(state.open_until),
    ]


def _text(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def _decode(values: list[Any] | None) -> SharedState | None:
    if not values or values[0] is None:
        return None
    state, opened_at, open_until, version = (None if v is None else _text(v) for v in values)
    return SharedState(
        state=str(state),
        opened_at=float(opened_at) if opened_at else None,
        open_until=float(open_until) if open_until else None,
        version=int(version) if version else 0,
    )


def _warn_if_slow(client: Any, kind: str) -> None:
    """Log once per store if the client can block a protected call for long."""
    try:
        kwargs = client.connection_pool.connection_kwargs
        timeouts = [kwargs.get("socket_timeout"), kwargs.get("socket_connect_timeout")]
    except AttributeError:  # not a redis-py client (a fake, a cluster client): trust it
        return
    retry = kwargs.get("retry")
    if retry is None and callable(getattr(client, "get_retry", None)):
        retry = client.get_retry()
    retries = getattr(retry, "_retries", 0)
    if any(t is None or t > _SLOW_TIMEOUT for t in timeouts) or retries:
        _log.warning(
            "%s: the Redis client's socket timeouts are %s/%s s with %s retries; during a "
            "Redis outage breaker calls may stall that long. Use %s.from_url(...) or pass "
            "socket_timeout/socket_connect_timeout of ~0.1 s and retry=Retry(NoBackoff(), 0).",
            kind, timeouts[0], timeouts[1], retries, kind,
        )


def _fast_fail_retry() -> Any:
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return Retry(NoBackoff(), 0)


class _Availability:
    """The fail-fast window and the saves waiting for Redis to come back."""

    __slots__ = ("_clock", "_down_error", "_down_until", "_lock", "_pending", "retry_interval")

    def __init__(self, retry_interval: float, clock: Callable[[], float]) -> None:
        if retry_interval < 0:
            raise ValueError(f"retry_interval must be >= 0 seconds, got {retry_interval!r}")
        self.retry_interval = float(retry_interval)
        self._clock = clock
        self._down_until = 0.0
        self._down_error = ""
        self._pending: dict[str, SharedState] = {}
        self._lock = threading.Lock()

    @property
    def available(self) -> bool:
        """False while the store is failing fast after a Redis error."""
        return not self._down_until or self._clock() >= self._down_until

    def check(self) -> None:
        """Raise `StoreUnavailableError` inside the fail-fast window (no network I/O)."""
        if self._down_until:
            remaining = self._down_until - self._clock()
            if remaining > 0:
                raise StoreUnavailableError(f"Redis unavailable: {self._down_error}", remaining)

    def failed(self, error: BaseException) -> None:
        self._down_error = f"{type(error).__name__}: {error}"
        self._down_until = self._clock() + self.retry_interval

    def remember(self, name: str, state: SharedState) -> None:
        with self._lock:
            current = self._pending.get(name)
            if current is None or state.version >= current.version:
                self._pending[name] = state

    def answered(self) -> dict[str, SharedState]:
        """Redis answered: leave the fail-fast window; return the saves to re-publish."""
        self._down_until = 0.0
        if not self._pending:
            return {}
        with self._lock:
            pending, self._pending = self._pending, {}
        return pending

    def forget(self, name: str, state: SharedState) -> None:
        """A newer save for ``name`` went through; drop an older pending one."""
        if self._pending:
            with self._lock:
                current = self._pending.get(name)
                if current is not None and current.version <= state.version:
                    del self._pending[name]


class RedisBreakerStore:
    """A `BreakerStore` on a redis-py **sync** client: breakers with the same name and
    prefix, in any process, share their state.

    ``prefix`` namespaces the keys; ``ttl`` (seconds, optional) lets the keys of breakers
    that stopped publishing expire; ``retry_interval`` is how long the store fails fast
    after a Redis error (see the module docs). Use `from_url` for a client with short
    timeouts. The async pair (``aload``/``asave``) raises ``NotImplementedError``: use
    `AsyncRedisBreakerStore` in asyncio code.
    """

    def __init__(
        self,
        client: Any,
        *,
        prefix: str = DEFAULT_PREFIX,
        ttl: float | None = None,
        retry_interval: float = DEFAULT_RETRY_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl is not None and ttl <= 0:
            raise ValueError(f"ttl must be > 0 seconds or None, got {ttl!r}")
        self.client = client
        self.prefix = prefix
        self._ttl_ms = 0 if ttl is None else max(1, int(ttl * 1000))
        self._health = _Availability(retry_interval, clock)
        self._script = client.register_script(_SAVE_LUA)
        _warn_if_slow(client, type(self).__name__)

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        socket_timeout: float = DEFAULT_SOCKET_TIMEOUT,
        prefix: str = DEFAULT_PREFIX,
        ttl: float | None = None,
        retry_interval: float = DEFAULT_RETRY_INTERVAL,
        **client_kwargs: Any,
    ) -> RedisBreakerStore:
        """A store on a new ``redis.Redis`` for ``url`` with short timeouts, no retries."""
        import redis

        client_kwargs.setdefault("socket_connect_timeout", socket_timeout)
        client_kwargs.setdefault("retry", _fast_fail_retry())
        client = redis.Redis.from_url(url, socket_timeout=socket_timeout, **client_kwargs)
        return cls(client, prefix=prefix, ttl=ttl, retry_interval=retry_interval)

    @property
    def available(self) -> bool:
        """False while the store is failing fast after a Redis error."""
        return self._health.available

    def key(self, name: str) -> str:
        """The Redis key holding breaker ``name``'s state."""
        return self.prefix + name

    def load(self, name: str) -> SharedState | None:
        """Return the stored state of breaker ``name``, or ``None`` if none was saved."""
        health = self._health
        health.check()
        try:
            values = self.client.hmget(self.prefix + name, _FIELDS)
        except Exception as exc:
            health.failed(exc)
            raise
        if health._down_until or health._pending:
            pending = health.answered()
            if pending:
                self._republish(pending)
                if name in pending:  # what we just re-published is the answer now
                    values = self.client.hmget(self.prefix + name, _FIELDS)
        return _decode(values)

    def save(self, name: str, state: SharedState) -> None:
        """Store ``state`` unless a newer version is already stored (atomic)."""
        health = self._health
        try:
            health.check()
            self._script(keys=[self.prefix + name], args=[*_encode(state), self._ttl_ms])
        except Exception as exc:
            health.remember(name, state)
            if not isinstance(exc, StoreUnavailableError):
                health.failed(exc)
            raise
        health.forget(name, state)
        if health._down_until or health._pending:
            self._republish(health.answered())

    def _republish(self, pending: dict[str, SharedState]) -> None:
        items = list(pending.items())
        for index, (name, state) in enumerate(items):
            try:
                self._script(keys=[self.prefix + name], args=[*_encode(state), self._ttl_ms])
            except Exception as exc:  # still flaky: keep the rest for the next recovery
                self._health.failed(exc)
                for rest_name, rest_state in items[index:]:
                    self._health.remember(rest_name, rest_state)
                return

    async def aload(self, name: str) -> SharedState | None:
        """Not supported by a sync client: use `AsyncRedisBreakerStore`."""
        raise NotImplementedError("RedisBreakerStore has a sync client; use AsyncRedisBreakerStore")

    async def asave(self, name: str, state: SharedState) -> None:
        """Not supported by a sync client: use `AsyncRedisBreakerStore`."""
        raise NotImplementedError("RedisBreakerStore has a sync client; use AsyncRedisBreakerStore")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} prefix={self.prefix!r} available={self.available}>"


class AsyncRedisBreakerStore:
    """The `RedisBreakerStore` twin on a ``redis.asyncio`` client (same keys, same Lua, so
    sync and async processes share breakers). The sync pair raises ``NotImplementedError``.
    """

    def __init__(
        self,
        client: Any,
        *,
        prefix: str = DEFAULT_PREFIX,
        ttl: float | None = None,
        retry_interval: float = DEFAULT_RETRY_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl is not None and ttl <= 0:
            raise ValueError(f"ttl must be > 0 seconds or None, got {ttl!r}")
        self.client = client
        self.prefix = prefix
        self._ttl_ms = 0 if ttl is None else max(1, int(ttl * 1000))
        self._health = _Availability(retry_interval, clock)
        self._script: Callable[..., Awaitable[Any]] = client.register_script(_SAVE_LUA)
        _warn_if_slow(client, type(self).__name__)

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        socket_timeout: float = DEFAULT_SOCKET_TIMEOUT,
        prefix: str = DEFAULT_PREFIX,
        ttl: float | None = None,
        retry_interval: float = DEFAULT_RETRY_INTERVAL,
        **client_kwargs: Any,
    ) -> AsyncRedisBreakerStore:
        """A store on a new ``redis.asyncio.Redis`` for ``url``, short timeouts, no retries."""
        import redis.asyncio
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        client_kwargs.setdefault("socket_connect_timeout", socket_timeout)
        client_kwargs.setdefault("retry", Retry(NoBackoff(), 0))
        client = redis.asyncio.Redis.from_url(url, socket_timeout=socket_timeout, **client_kwargs)
        return cls(client, prefix=prefix, ttl=ttl, retry_interval=retry_interval)

    @property
    def available(self) -> bool:
        """False while the store is failing fast after a Redis error."""
        return self._health.available

    def key(self, name: str) -> str:
        """The Redis key holding breaker ``name``'s state."""
        return self.prefix + name

    async def aload(self, name: str) -> SharedState | None:
        """Return the stored state of breaker ``name``, or ``None`` if none was saved."""
        health = self._health
        health.check()
        try:
            values = await self.client.hmget(self.prefix + name, _FIELDS)
        except Exception as exc:
            health.failed(exc)
            raise
        if health._down_until or health._pending:
            pending = health.answered()
            if pending:
                await self._republish(pending)
                if name in pending:  # what we just re-published is the answer now
                    values = await self.client.hmget(self.prefix + name, _FIELDS)
        return _decode(values)

    async def asave(self, name: str, state: SharedState) -> None:
        """Store ``state`` unless a newer version is already stored (atomic)."""
        health = self._health
        try:
            health.check()
            await self._script(keys=[self.prefix + name], args=[*_encode(state), self._ttl_ms])
        except Exception as exc:
            health.remember(name, state)
            if not isinstance(exc, StoreUnavailableError):
                health.failed(exc)
            raise
        health.forget(name, state)
        if health._down_until or health._pending:
            await self._republish(health.answered())

    async def _republish(self, pending: dict[str, SharedState]) -> None:
        items = list(pending.items())
        for index, (name, state) in enumerate(items):
            try:
                await self._script(keys=[self.prefix + name], args=[*_encode(state), self._ttl_ms])
            except Exception as exc:  # still flaky: keep the rest for the next recovery
                self._health.failed(exc)
                for rest_name, rest_state in items[index:]:
                    self._health.remember(rest_name, rest_state)
                return

    def load(self, name: str) -> SharedState | None:
        """Not supported by an asyncio client: use `RedisBreakerStore`."""
        raise NotImplementedError("AsyncRedisBreakerStore has an asyncio client; use aload")

    def save(self, name: str, state: SharedState) -> None:
        """Not supported by an asyncio client: use `RedisBreakerStore`."""
        raise NotImplementedError("AsyncRedisBreakerStore has an asyncio client; use asave")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} prefix={self.prefix!r} available={self.available}>"
