"""Breaker state shared between processes: the store protocol and an in-process store.

A breaker with a ``store`` publishes every state transition it makes (``save``) and
regularly adopts transitions made elsewhere (``load``, at most once per
``sync_interval``). Only the coarse state is shared — closed/open/half-open, when it
opened and until when — never the sliding window: each process judges the failure rate
it sees, and one process tripping opens the circuit for all.

Timestamps in `SharedState` are wall-clock epoch seconds (``time.time()``) so that
processes on different machines agree, unless the breaker was given an injected clock,
in which case that clock is used (tests share one `FakeClock`).

Every store error is caught by the breaker: it keeps working on its local state and
emits `BreakerStoreDegraded` (once), then `BreakerStoreRecovered` when the store answers
again. A store with only a sync (or only an async) client implements the other pair by
raising ``NotImplementedError``; the breaker then stops calling that pair, silently.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = ["BreakerStore", "LocalStore", "SharedState"]

STATES = frozenset({"closed", "open", "half_open", "forced_open", "disabled"})


@dataclass(frozen=True, slots=True)
class SharedState:
    """The coarse state of one named breaker, as shared through a store.

    ``state`` is one of ``"closed"``, ``"open"``, ``"half_open"``, ``"forced_open"``,
    ``"disabled"``; ``opened_at``/``open_until`` are set while open (wall-clock seconds,
    see module docs); ``version`` grows by one with every published transition, so a
    reader can tell a new transition from one it has already seen.
    """

    state: str
    opened_at: float | None = None
    open_until: float | None = None
    version: int = 0

    def __post_init__(self) -> None:
        if self.state not in STATES:
            raise ValueError(f"SharedState.state must be one of {sorted(STATES)}, got {self.state!r}")
        if self.version < 0:
            raise ValueError(f"SharedState.version must be >= 0, got {self.version!r}")


@runtime_checkable
class BreakerStore(Protocol):
    """Where breakers publish and read their `SharedState`, keyed by breaker name.

    ``load`` returns ``None`` when nothing was stored yet. Implementations may raise any
    exception (the breaker degrades to local state); see the module docs for stores that
    have only one kind of client.
    """

    def load(self, name: str) -> SharedState | None:
        """Return the stored state of breaker ``name`` (sync path)."""
        ...

    def save(self, name: str, state: SharedState) -> None:
        """Store the state of breaker ``name`` (sync path)."""
        ...

    async def aload(self, name: str) -> SharedState | None:
        """Return the stored state of breaker ``name`` (async path)."""
        ...

    async def asave(self, name: str, state: SharedState) -> None:
        """Store the state of breaker ``name`` (async path)."""
        ...


class LocalStore:
    """A `BreakerStore` in this process's memory: breakers with the same name and the same
    `LocalStore` share their state. The reference implementation of the protocol, and the
    store to use in tests."""

    __slots__ = ("_lock", "_states")

    def __init__(self) -> None:
        self._states: dict[str, SharedState] = {}
        self._lock = threading.Lock()

    def load(self, name: str) -> SharedState | None:
        """Return the stored state of ``name`` or ``None``."""
        return self._states.get(name)

    def save(self, name: str, state: SharedState) -> None:
        """Store ``state`` for ``name``, unless a newer version is already stored."""
        with self._lock:
            current = self._states.get(name)
            if current is None or state.version >= current.version:
                self._states[name] = state

    async def aload(self, name: str) -> SharedState | None:
        """Async twin of `load`."""
        return self.load(name)

    async def asave(self, name: str, state: SharedState) -> None:
        """Async twin of `save`."""
        self.save(name, state)
