"""The toxic model: configured toxics, per-connection stubs, toxic types.

A :class:`Toxic` is the configured fault (name, type, stream, toxicity, scope,
attributes), shared by every connection of a proxy; it owns the fault's counters
(``_effect``) and numbers its random decisions (``_seed``). A :class:`ToxicStub` is
that toxic on one connection: its own RNG, its decision, its state. Each toxic type is
a :class:`ToxicKind` whose hooks run on the stub:

- ``on_attach`` when the stub is created (new connection, or toxic added live),
- ``on_data`` / ``on_eof`` for each chunk or end of stream flowing through the link,
- ``on_update`` / ``on_remove`` when the toxic is changed or deleted through the API.

A kind passes data on with ``await link.emit(chain, pos + 1, data, ts)``; ``ts`` is the
chunk's arrival time on the monotonic clock, so latency counts from arrival, as in
Toxiproxy. ``link.exchange`` is the number of the request/reply turn the chunk belongs
to (see ``_connection``).

Toxicity (``scope``): with ``"connection"`` (Toxiproxy's behaviour, the default) a stub
rolls once when it is attached, and a stub that rolled "no" is left out of the link's
chain entirely (the link may stay on the hot path). With ``"exchange"`` the stub is
always in the chain and rolls again for each exchange (:meth:`ToxicStub.hit`).
"""

from __future__ import annotations

import asyncio
import random
from time import monotonic
from typing import TYPE_CHECKING, Any, ClassVar

from faultline.proxy._effect import Counters, FiredLog
from faultline.proxy._seed import Seeding, decision, stub_rng
from faultline.proxy._validate import Attr

if TYPE_CHECKING:
    from faultline.proxy._link import Link

__all__ = ["STREAMS", "Chain", "Toxic", "ToxicKind", "ToxicStub", "monotonic"]

STREAMS = ("upstream", "downstream")

Chain = tuple["ToxicStub", ...]


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


class ToxicKind:
    """A toxic type: its attributes, its effect counters and its behaviour."""

    name: ClassVar[str] = ""
    attributes: ClassVar[dict[str, Attr]] = {}
    #: the effect counters it reports (``x_ms`` is kept as ``x_us``)
    effects: ClassVar[tuple[str, ...]] = ()
    #: False when toxicity is not a per-connection roll (http_error rolls per request)
    rolls_per_connection: ClassVar[bool] = True
    #: whether ``scope: "exchange"`` means something for it
    exchange_scope: ClassVar[bool] = True
    #: whether the kind touches the byte stream (connect_delay does not)
    handles_data: ClassVar[bool] = True

    def direction(self, stream: str) -> str:
        """The link this toxic acts on, given its ``stream``."""
        return stream

    def effect_names(self, stream: str) -> tuple[str, ...]:
        """The effect counters of a toxic of this kind on ``stream``."""
        return self.effects

    def validate(self, attrs: dict[str, Any]) -> None:
        """Raise :class:`APIError` (400) when attribute values make no sense together."""

    def on_attach(self, stub: ToxicStub) -> None:
        """The stub was created on a live connection."""

    def on_update(self, stub: ToxicStub) -> None:
        """The toxic's attributes, toxicity or scope changed."""

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


class Toxic:
    """A configured toxic of one proxy (the API's ``{name, type, stream, toxicity, ...}``)."""

    __slots__ = ("attached", "attributes", "counters", "direction", "epoch", "fired", "kind",
                 "name", "proxy", "rolls", "scope", "seeding", "stream", "toxicity", "type")

    def __init__(self, name: str, type: str, stream: str, toxicity: float,
                 attributes: dict[str, Any], kind: ToxicKind, scope: str = "connection") -> None:
        self.name = name
        self.type = type
        self.kind = kind
        self.stream = stream
        self.direction = kind.direction(stream.lower())
        self.toxicity = toxicity
        self.attributes = attributes
        self.scope = scope
        self.counters = Counters()
        self.proxy = ""
        self.seeding = Seeding(0)  # a placeholder until bind(): the server's own seeding
        self.fired: FiredLog | None = None
        self.epoch = -1
        self.attached = 0  # connections attached since the seed's epoch (stub RNGs)
        self.rolls: dict[str, int] = {}  # decisions made per scope since the epoch

    def bind(self, proxy: str, seeding: Seeding, fired: FiredLog) -> None:
        """The proxy it belongs to, the server's seed, where its firings go."""
        self.proxy = proxy
        self.seeding = seeding
        self.fired = fired

    def _renumber(self) -> None:
        if self.epoch != self.seeding.epoch:  # a new seed: number decisions from 0 again
            self.epoch = self.seeding.epoch
            self.attached = 0
            self.rolls.clear()

    def new_stub_rng(self) -> random.Random:
        """The RNG of the next connection this toxic attaches to."""
        self._renumber()
        n = self.attached
        self.attached += 1
        return stub_rng(self.seeding.seed, self.proxy, self.name, n)

    def decide(self, scope: str) -> tuple[int, bool]:
        """The next decision in ``scope``: its ordinal, and whether the toxic acts."""
        self._renumber()
        n = self.rolls.get(scope, 0)
        self.rolls[scope] = n + 1
        toxicity = self.toxicity
        if toxicity >= 1.0:
            return n, True
        if toxicity <= 0.0:
            return n, False
        return n, decision(self.seeding.seed, self.proxy, self.name, scope, n) < toxicity

    def to_json(self) -> dict[str, Any]:
        """Toxiproxy's JSON shape (attributes first, like Go's struct order).

        ``scope`` is added only when it is not the default, so Toxiproxy clients that
        compare toxics field by field see exactly what they sent.
        """
        out: dict[str, Any] = {
            "attributes": dict(self.attributes),
            "name": self.name,
            "type": self.type,
            "stream": self.stream,
            "toxicity": self.toxicity,
        }
        if self.scope != "connection":
            out["scope"] = self.scope
        return out

    def report(self, live_bytes: int = 0, live_exchanges: int = 0) -> dict[str, Any]:
        """``{"seen": {...}, "effect": {...}}``; ``live_*``: what open stubs saw so far."""
        c = self.counters
        return {
            "seen": {"connections": c.connections, "exchanges": c.exchanges + live_exchanges,
                     "bytes": c.bytes + live_bytes},
            "effect": c.effect_json(self.kind.effect_names(self.stream.lower())),
        }


class ToxicStub:
    """One toxic on one connection's link: RNG, decision and per-connection state."""

    __slots__ = ("active", "bytes", "bytes_base", "clock", "decision", "done_for", "ex",
                 "ex_base", "ex_hit", "fired_for", "http", "link", "per_exchange", "removed",
                 "rng", "settled", "timer", "toxic", "waiters")

    def __init__(self, toxic: Toxic, link: Link) -> None:
        self.toxic = toxic
        self.link = link
        kind = toxic.kind
        toxic.counters.connections += 1
        self.rng = toxic.new_stub_rng()
        self.per_exchange = toxic.scope == "exchange" and kind.rolls_per_connection
        self.decision = -1
        self.active = True
        if kind.rolls_per_connection and not self.per_exchange:
            self.decision, self.active = toxic.decide("connection")
        self.removed = False
        self.settled = False
        self.bytes = 0  # bytes let through so far (this exchange, with scope "exchange")
        self.clock = 0.0  # bandwidth: when the link is free to send again
        self.timer: asyncio.TimerHandle | None = None
        self.http: Any = None  # http_error: its request parser state
        self.waiters: set[asyncio.Future[None]] = set()
        self.bytes_base = link.nbytes  # ``seen`` is counted as the difference at detach
        self.ex_base = link.conn.exchanges
        self.ex = self.ex_base  # the exchange the current decision is for
        self.ex_hit = False
        self.fired_for = -2  # the decision already reported by fire_once
        self.done_for = -2  # the decision a one-shot toxic (stall, half_close) acted on

    def reroll(self) -> None:
        """Toxicity or scope changed: decide again (a new decision, with a new ordinal)."""
        toxic = self.toxic
        self.per_exchange = toxic.scope == "exchange" and toxic.kind.rolls_per_connection
        if self.per_exchange:
            self.active = True
            self.ex = self.link.conn.exchanges  # roll from the next exchange on
            self.ex_hit = False
        elif toxic.kind.rolls_per_connection:
            self.decision, self.active = toxic.decide("connection")

    def hit(self, ex: int) -> bool:
        """With scope ``exchange``: does the toxic act on exchange ``ex``? (rolled once each)

        Exchanges that began before the toxic was attached are not rolled for: they
        pass untouched.
        """
        if ex != self.ex:
            self.ex = ex
            if ex <= self.ex_base:
                self.ex_hit = False
            else:
                self.decision, self.ex_hit = self.toxic.decide("exchange")
                self.bytes = 0
        return self.ex_hit

    async def sleep(self, delay: float | None) -> None:
        """Sleep (``None``: until removed), but wake at once if the toxic is removed."""
        if self.removed or (delay is not None and delay <= 0):
            return
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        handle = None
        if delay is not None:
            asked = delay - _lateness.lead(delay)
            start = monotonic()
            handle = loop.call_later(asked, _done, fut)
        self.waiters.add(fut)
        try:
            await fut
        finally:
            if handle is not None:
                handle.cancel()
            self.waiters.discard(fut)
        if handle is not None and not self.removed:
            _lateness.observe(monotonic() - start - asked)

    def detach(self) -> None:
        """Mark removed, cancel timers, wake every sleeper, settle the ``seen`` counters."""
        self.removed = True
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        for fut in list(self.waiters):
            _done(fut)
        self.settle()

    def settle(self) -> None:
        """Add what this stub saw to its toxic's counters (once)."""
        if not self.settled:
            self.settled = True
            counters = self.toxic.counters
            counters.bytes += self.link.nbytes - self.bytes_base
            counters.exchanges += self.link.conn.exchanges - self.ex_base

    def live_seen(self) -> tuple[int, int]:
        """(bytes, exchanges) seen so far and not yet settled."""
        if self.settled:
            return 0, 0
        return self.link.nbytes - self.bytes_base, self.link.conn.exchanges - self.ex_base

    def fire(self, detail: str) -> None:
        """Record that this toxic acted (a ``toxic_fired`` event, aggregated)."""
        self.fired_for = self.decision
        fired = self.toxic.fired
        if fired is not None:
            fired.fire(detail, self.decision, self.link.conn.ordinal)

    def fire_once(self, detail: str) -> None:
        """:meth:`fire`, once per decision (toxics that act on every chunk)."""
        if self.fired_for != self.decision:
            self.fire(detail)
