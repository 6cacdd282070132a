"""The toxic model: configured toxics, per-connection stubs, attribute parsing.

A :class:`Toxic` is the configured fault (name, type, stream, toxicity, attributes),
shared by every connection of a proxy. A :class:`ToxicStub` is that toxic on one
connection: its own seeded RNG, its toxicity roll (made once), its state. Each toxic
type is a :class:`ToxicKind` whose hooks run on the stub:

- ``on_attach`` when the stub is created (new connection, or toxic added live),
- ``on_data`` / ``on_eof`` for each chunk or end of stream flowing through the link,
- ``on_update`` / ``on_remove`` when the toxic is changed or deleted through the API.

A kind passes data on with ``await link.emit(chain, pos + 1, data, ts)``; ``ts`` is the
chunk's arrival time on the monotonic clock, so latency counts from arrival, as in Toxiproxy.
"""

from __future__ import annotations

import asyncio
import math
import random
from time import monotonic
from typing import TYPE_CHECKING, Any, ClassVar

from faultline.proxy._errors import bad_request

if TYPE_CHECKING:
    from faultline.proxy._link import Link

__all__ = [
    "STREAMS",
    "Chain",
    "Toxic",
    "ToxicKind",
    "ToxicStub",
    "derive_rng",
    "monotonic",
    "parse_attributes",
    "parse_toxicity",
]

STREAMS = ("upstream", "downstream")

Chain = tuple["ToxicStub", ...]


def derive_rng(seed: int | None, proxy: str, ordinal: int, toxic: str) -> random.Random:
    """The RNG of one toxic on one connection.

    Derived from the seed, the proxy name, the connection's ordinal and the toxic's name,
    so a seeded run draws the same numbers whatever the scheduling of other connections.
    Without a seed, it is seeded from the OS.
    """
    if seed is None:
        return random.Random()
    return random.Random(f"{seed}\x1f{proxy}\x1f{ordinal}\x1f{toxic}")


class _TimerLateness:
    """How late the event loop's timers fire, as a moving average (seconds).

    A loop timer wakes a little after its deadline (timer slack, a busy loop, a loaded
    machine); on a shared CI box that was measured at 2-3 ms per sleep, which would
    make a 30 ms latency toxic add 33 ms. Toxic sleeps ask to wake this much earlier,
    so the delay users configure is the delay the bytes see, at the median. Bounded,
    so a burst of load cannot make sleeps end far too early.
    """

    __slots__ = ("estimate",)
    CAP = 0.002
    WEIGHT = 0.125

    def __init__(self) -> None:
        self.estimate = 0.0

    def lead(self, delay: float) -> float:
        return min(self.estimate, delay, self.CAP)

    def observe(self, late: float) -> None:
        late = min(max(late, 0.0), 4 * self.CAP)
        self.estimate += (late - self.estimate) * self.WEIGHT


_lateness = _TimerLateness()


def _done(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


class ToxicStub:
    """One toxic on one connection's link: RNG, toxicity roll and per-connection state."""

    __slots__ = ("active", "bytes", "clock", "http", "link", "removed", "rng", "timer",
                 "toxic", "waiters")

    def __init__(self, toxic: Toxic, link: Link, rng: random.Random) -> None:
        self.toxic = toxic
        self.link = link
        self.rng = rng
        self.active = toxic.kind.rolls_per_connection is False or self.roll()
        self.removed = False
        self.bytes = 0  # limit_data / lost_ack: bytes let through so far
        self.clock = 0.0  # bandwidth: when the link is free to send again
        self.timer: asyncio.TimerHandle | None = None
        self.http: Any = None  # http_error: its request parser state
        self.waiters: set[asyncio.Future[None]] = set()

    def roll(self) -> bool:
        """Roll this connection's toxicity (Toxiproxy: ``rand < toxicity``)."""
        return self.rng.random() < self.toxic.toxicity

    async def sleep(self, delay: float) -> None:
        """Sleep, but wake at once if the toxic is removed (data is never dropped)."""
        if delay <= 0 or self.removed:
            return
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        asked = delay - _lateness.lead(delay)
        start = monotonic()
        handle = loop.call_later(asked, _done, fut)
        self.waiters.add(fut)
        try:
            await fut
        finally:
            handle.cancel()
            self.waiters.discard(fut)
        if not self.removed:
            _lateness.observe(monotonic() - start - asked)

    def detach(self) -> None:
        """Mark removed, cancel timers, wake every sleeper."""
        self.removed = True
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        for fut in list(self.waiters):
            _done(fut)

    def fired(self, what: str) -> None:
        """Record that this toxic acted on the connection (an event for the history)."""
        self.link.conn.toxic_fired(self.toxic, what)


class ToxicKind:
    """A toxic type: its attributes (name -> (type, default)) and its behaviour."""

    name: ClassVar[str] = ""
    attributes: ClassVar[dict[str, tuple[type, Any]]] = {}
    #: False when toxicity is not a per-connection roll (http_error rolls per request)
    rolls_per_connection: ClassVar[bool] = True
    #: whether the kind touches the byte stream (connect_delay does not)
    handles_data: ClassVar[bool] = True

    def direction(self, stream: str) -> str:
        """The link this toxic acts on, given its ``stream``."""
        return stream

    def validate(self, attrs: dict[str, Any]) -> None:
        """Raise :class:`APIError` (400) when attribute values make no sense."""

    def on_attach(self, stub: ToxicStub) -> None:
        """The stub was created on a live connection."""

    def on_update(self, stub: ToxicStub) -> None:
        """The toxic's attributes or toxicity changed."""

    def on_remove(self, stub: ToxicStub) -> None:
        """The toxic was removed; the stub is already detached."""

    async def on_data(
        self, stub: ToxicStub, link: Link, chain: Chain, pos: int, data: bytes, ts: float
    ) -> None:
        """A chunk arrived; pass it on (possibly changed, delayed, split) or drop it."""
        await link.emit(chain, pos + 1, data, ts)

    async def on_eof(self, stub: ToxicStub, link: Link, chain: Chain, pos: int) -> None:
        """The source closed its side; pass the end of stream on."""
        await link.emit_eof(chain, pos + 1)


def _type_name(value: object) -> str:
    return {bool: "bool", int: "number", float: "number", str: "string", list: "array",
            dict: "object", type(None): "null"}.get(type(value), type(value).__name__)


def parse_attributes(kind: ToxicKind, raw: object, base: dict[str, Any] | None) -> dict[str, Any]:
    """Typed attributes: ``raw`` merged over ``base`` (or the defaults); 400 on bad types.

    Like Go's decoder: unknown keys are ignored, ``null`` keeps the current value, and a
    float where an integer is expected is an error.
    """
    attrs = dict(base) if base is not None else {k: d for k, (_, d) in kind.attributes.items()}
    if raw is None:
        return attrs
    if not isinstance(raw, dict):
        raise bad_request(f"json: cannot unmarshal {_type_name(raw)} into attributes")
    for key, value in raw.items():
        spec = kind.attributes.get(key)
        if spec is None or value is None:
            continue
        typ = spec[0]
        ok = (
            isinstance(value, int) and not isinstance(value, bool)
            if typ is int
            else isinstance(value, typ)
        )
        if not ok:
            want = "int64" if typ is int else typ.__name__
            raise bad_request(
                f"json: cannot unmarshal {_type_name(value)} into Go struct field "
                f"{kind.name}.attributes.{key} of type {want}"
            )
        attrs[key] = value
    return attrs


class Toxic:
    """A configured toxic of one proxy (the API's ``{name, type, stream, toxicity, attributes}``)."""

    __slots__ = ("attributes", "direction", "kind", "name", "stream", "toxicity", "type")

    def __init__(
        self,
        name: str,
        type: str,
        stream: str,
        toxicity: float,
        attributes: dict[str, Any],
        kind: ToxicKind,
    ) -> None:
        self.name = name
        self.type = type
        self.kind = kind
        self.stream = stream
        self.direction = self.kind.direction(stream.lower())
        self.toxicity = toxicity
        self.attributes = attributes

    def to_json(self) -> dict[str, Any]:
        """Toxiproxy's JSON shape (attributes first, like Go's struct order)."""
        return {
            "attributes": dict(self.attributes),
            "name": self.name,
            "type": self.type,
            "stream": self.stream,
            "toxicity": self.toxicity,
        }


def parse_toxicity(value: object, current: float) -> float:
    """A toxicity from JSON: a number (``null`` keeps ``current``)."""
    if value is None:
        return current
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise bad_request(
            f"json: cannot unmarshal {_type_name(value)} into Go struct field "
            "ToxicWrapper.toxicity of type float32"
        )
    return float(value)
