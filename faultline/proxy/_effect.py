"""What a fault did: a toxic's counters, its ``toxic_fired`` events, a disabled proxy's cut.

A drill in which a fault did nothing proved nothing, so every toxic keeps, over all its
connections since it was added, two groups of integer counters:

- ``seen``: what it was exposed to (``connections`` it was attached to, ``exchanges``
  that started on them, ``bytes`` that flowed through its direction while attached);
- ``effect``: only what it *changed*, named per toxic type (``chunks_delayed``,
  ``connections_reset``, ``replies_dropped``...). All zeros means it never acted.

The counters sit on the hot path of a toxic, so they are plain int slots of one object
per toxic: no lock (everything runs on the server's one loop), no allocation per
chunk. ``seen`` is not even counted per chunk: a stub remembers the link's byte and
exchange counters when it is attached and adds the difference when it is detached.
Durations are kept in microseconds (a bandwidth toxic's pieces are fractions of a
millisecond) and reported in whole milliseconds.

``toxic_fired`` events are aggregated so that a busy toxic cannot flood the events
file: a toxic's first firing is reported at once, and every later firing within the
following second is folded into one event at the end of that second (``count``,
``details``, the decision ordinals that fired), and so on while it keeps firing. At
most one event per toxic per second, plus the first; pending firings are flushed
before the toxic's ``toxic_removed`` event.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from time import monotonic
from typing import Any

__all__ = ["EFFECT_SLOTS", "Counters", "DisableWindow", "FiredLog"]

#: every effect counter of every toxic type (``*_us`` are reported as ``*_ms``)
EFFECT_SLOTS = (
    "answers_replaced", "bytes_cut", "bytes_delayed", "bytes_dropped", "bytes_held",
    "bytes_throttled", "chunks_delayed", "chunks_sliced", "closes_delayed",
    "connections_closed", "connections_half_closed", "connections_reset",
    "connections_stalled", "connects_delayed", "delay_us", "replies_dropped",
    "requests_dropped", "slices", "stall_us", "stalls",
)


class Counters:
    """The integer counters of one toxic: ``seen`` of closed stubs, and ``effect``."""

    __slots__ = ("bytes", "connections", "exchanges", *EFFECT_SLOTS)

    # mypy cannot see slots assigned in a loop; these are the ones the toxics touch
    bytes: int
    connections: int
    exchanges: int
    answers_replaced: int
    bytes_cut: int
    bytes_delayed: int
    bytes_dropped: int
    bytes_held: int
    bytes_throttled: int
    chunks_delayed: int
    chunks_sliced: int
    closes_delayed: int
    connections_closed: int
    connections_half_closed: int
    connections_reset: int
    connections_stalled: int
    connects_delayed: int
    delay_us: int
    replies_dropped: int
    requests_dropped: int
    slices: int
    stall_us: int
    stalls: int

    def __init__(self) -> None:
        for name in self.__slots__:
            setattr(self, name, 0)

    def effect_json(self, names: tuple[str, ...]) -> dict[str, int]:
        """The effect counters called ``names`` (``x_ms`` read from ``x_us``)."""
        out: dict[str, int] = {}
        for name in names:
            if name.endswith("_ms"):
                out[name] = int(getattr(self, name[:-3] + "_us")) // 1000
            else:
                out[name] = int(getattr(self, name))
        return out


class FiredLog:
    """The ``toxic_fired`` events of one toxic: the first at once, then one per window."""

    WINDOW = 1.0  # seconds
    LISTED = 64  # decision ordinals and connections listed per event

    __slots__ = (
        "connections",
        "count",
        "decisions",
        "details",
        "emit",
        "first",
        "last",
        "loop",
        "more",
        "scope",
        "timer",
    )

    def __init__(self, loop: asyncio.AbstractEventLoop, scope: str,
                 emit: Callable[[dict[str, Any]], None]) -> None:
        self.loop = loop
        self.scope = scope
        self.emit = emit
        self.timer: asyncio.TimerHandle | None = None
        self._clear()

    def _clear(self) -> None:
        self.count = 0
        self.details: dict[str, int] = {}
        self.decisions: list[int] = []
        self.connections: list[int] = []
        self.more = 0
        self.first = 0.0
        self.last = 0.0

    def fire(self, detail: str, decision: int, connection: int) -> None:
        """The toxic acted once (``decision``: the ordinal of the roll that let it)."""
        now = monotonic()
        if self.count == 0:
            self.first = now
        self.last = now
        self.count += 1
        self.details[detail] = self.details.get(detail, 0) + 1
        if not self.decisions or self.decisions[-1] != decision:
            if len(self.decisions) < self.LISTED:
                self.decisions.append(decision)
            else:
                self.more += 1
        if connection not in self.connections[-4:] and len(self.connections) < self.LISTED:
            self.connections.append(connection)
        if self.timer is None:  # quiet until now: report at once, then open a window
            self._report()
            self.timer = self.loop.call_later(self.WINDOW, self._tick)

    def _tick(self) -> None:
        if self.count:
            self._report()
            self.timer = self.loop.call_later(self.WINDOW, self._tick)
        else:
            self.timer = None

    def _report(self) -> None:
        first_detail = next(iter(self.details))
        self.emit({
            "count": self.count, "detail": first_detail, "details": dict(self.details),
            "connection": self.connections[0] if self.connections else None,
            "connections": list(self.connections), "scope": self.scope,
            "decisions": list(self.decisions), "decisions_more": self.more,
            "first_mono": self.first, "last_mono": self.last,
        })
        self._clear()

    def flush(self) -> None:
        """Report what is pending now and stop the window (the toxic is going away)."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.count:
            self._report()


class DisableWindow:
    """What disabling a proxy did, from ``enabled: false`` until it was enabled again.

    Only what can honestly be counted: the listener is closed while the proxy is
    disabled, so connection attempts are refused by the kernel and never reach us.
    """

    __slots__ = ("bytes_discarded", "connections_cut", "since", "until")

    def __init__(self, since: float | None = None) -> None:
        self.since = since
        self.until: float | None = None
        self.connections_cut = 0
        self.bytes_discarded = 0

    def effect(self) -> dict[str, int]:
        """The counters of this window."""
        return {"connections_cut": self.connections_cut,
                "bytes_discarded": self.bytes_discarded}

    def to_json(self) -> dict[str, Any]:
        """``GET /proxies/{proxy}/effect``'s answer."""
        return {"disabled_since": self.since, "disabled_until": self.until,
                "effect": self.effect()}
