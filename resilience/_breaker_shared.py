"""The breaker's side of a shared `BreakerStore`: publish local transitions, adopt remote ones.

Kept apart from the state machine in `_breaker`: `SharedStateMixin` is mixed into
`CircuitBreaker` and works on its fields. See `_breaker_store` for the semantics.
"""

from __future__ import annotations

import threading

from resilience._breaker_options import (
    CLOSED,
    DISABLED,
    FORCED_OPEN,
    HALF_OPEN,
    OPEN,
    BreakerOptions,
)
from resilience._breaker_store import BreakerStore, SharedState
from resilience._clock import Clock
from resilience._events import (
    BreakerStateChanged,
    BreakerStoreDegraded,
    BreakerStoreRecovered,
    Event,
)
from resilience._policy import Policy

__all__ = ["SharedStateMixin"]


class SharedStateMixin(Policy):
    """Store synchronisation, the base of `CircuitBreaker` (which sets every field)."""

    __slots__ = (
        "_async_store_ok",
        "_degraded",
        "_dirty",
        "_next_sync",
        "_open_until",
        "_opened_at",
        "_seen_version",
        "_store",
        "_store_clock",
        "_sync_store_ok",
    )

    options: BreakerOptions
    _async_store_ok: bool
    _degraded: bool
    _dirty: bool
    _next_sync: float
    _open_until: float
    _opened_at: float
    _seen_version: int
    _sync_store_ok: bool
    _clock: Clock
    _lock: threading.Lock
    _state: str
    _store: BreakerStore | None
    _store_clock: Clock

    def _to(self, new: str, now: float, reason: str) -> BreakerStateChanged:
        raise NotImplementedError

    def _snapshot(self) -> SharedState:
        with self._lock:
            self._dirty = False
            self._seen_version += 1
            state = self._state
            offset = self._store_clock() - self._clock()
            opened = open_until = None
            if state is OPEN:
                opened = self._opened_at + offset
                open_until = self._open_until + offset
            return SharedState(state, opened, open_until, self._seen_version)

    def _publish(self) -> None:
        store = self._store
        if store is None or not self._sync_store_ok:
            return
        snapshot = self._snapshot()
        try:
            store.save(self.name, snapshot)
        except NotImplementedError:
            self._sync_store_ok = False
            self._dirty = True  # leave it for the async path
        except Exception as exc:
            self._store_failed("save", exc)
        else:
            self._store_answered()

    async def _apublish(self) -> None:
        store = self._store
        if store is None:
            return
        if not self._async_store_ok:
            self._publish()
            return
        snapshot = self._snapshot()
        try:
            await store.asave(self.name, snapshot)
        except NotImplementedError:
            self._async_store_ok = False
            self._dirty = True
            self._publish()
        except Exception as exc:
            self._store_failed("save", exc)
        else:
            self._store_answered()

    def _sync_before_call(self) -> None:
        store = self._store
        now = self._clock()
        if store is None or now < self._next_sync or not self._sync_store_ok:
            return
        self._next_sync = now + self.options.store_sync_interval
        try:
            shared = store.load(self.name)
        except NotImplementedError:
            self._sync_store_ok = False
            return
        except Exception as exc:
            self._store_failed("load", exc)
            return
        self._store_answered()
        if shared is not None:
            self._adopt(shared)

    async def _async_sync_before_call(self) -> None:
        store = self._store
        now = self._clock()
        if store is None or now < self._next_sync:
            return
        if not self._async_store_ok:
            self._sync_before_call()
            return
        self._next_sync = now + self.options.store_sync_interval
        try:
            shared = await store.aload(self.name)
        except NotImplementedError:
            self._async_store_ok = False
            self._next_sync = 0.0
            self._sync_before_call()
            return
        except Exception as exc:
            self._store_failed("load", exc)
            return
        self._store_answered()
        if shared is not None:
            self._adopt(shared)

    def _adopt(self, shared: SharedState) -> None:
        """Take over a transition another process published (newer than any seen here)."""
        event: Event | None = None
        with self._lock:
            if shared.version <= self._seen_version:
                return
            self._seen_version = shared.version
            now = self._clock()
            new = shared.state
            if new == OPEN:
                until = shared.open_until
                local_until = now if until is None else until - self._store_clock() + now
                if local_until > now:
                    if self._state is not OPEN:
                        event = self._to(OPEN, now, "shared_state")
                    self._open_until = local_until
                    if shared.opened_at is not None:
                        self._opened_at = shared.opened_at - self._store_clock() + now
            elif new == HALF_OPEN:
                # Elsewhere the open period is over; run our own trials from here.
                if self._state in (CLOSED, FORCED_OPEN, DISABLED):
                    event = self._to(OPEN, now, "shared_state")
                if self._state is OPEN:
                    self._open_until = now
            elif new != self._state:
                canonical = {CLOSED: CLOSED, FORCED_OPEN: FORCED_OPEN, DISABLED: DISABLED}[new]
                event = self._to(canonical, now, "shared_state")
        if event is not None:
            self._hooks.emit(event)

    def _store_failed(self, operation: str, exc: Exception) -> None:
        if not self._degraded:
            self._degraded = True
            self._hooks.emit(
                BreakerStoreDegraded(
                    self.name, self._clock(), operation, f"{type(exc).__name__}: {exc}"
                )
            )

    def _store_answered(self) -> None:
        if self._degraded:
            self._degraded = False
            self._hooks.emit(BreakerStoreRecovered(self.name, self._clock()))
