"""Toxiproxy's toxics, with Toxiproxy's semantics (``toxics/*.go``), and their effects.

Each counts what it changed (``effects``) and reports it once per decision with
``fire_once`` (toxics that act on every chunk) or at every action with ``fire``
(toxics that end a connection). With ``scope: "exchange"``, each first asks
``stub.hit(link.exchange)`` and lets an exchange that rolled "no" pass untouched.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

from faultline.proxy._errors import APIError
from faultline.proxy._toxic import Chain, ToxicKind, ToxicStub, monotonic
from faultline.proxy._validate import Attr

if TYPE_CHECKING:
    from faultline.proxy._link import Link

__all__ = ["TOXIPROXY_KINDS", "slice_offsets"]


class _Latency(ToxicKind):
    name = "latency"
    attributes = {"latency": Attr.ms(), "jitter": Attr.ms()}
    effects = ("chunks_delayed", "bytes_delayed", "delay_ms")

    async def on_data(
        self, stub: ToxicStub, link: Link, chain: Chain, pos: int, data: bytes, ts: float
    ) -> None:
        if stub.per_exchange and not stub.hit(link.exchange):
            await link.emit(chain, pos + 1, data, ts)
            return
        attrs = stub.toxic.attributes
        delay: int = attrs["latency"]
        jitter: int = attrs["jitter"]
        if jitter > 0:  # Toxiproxy: rand.Intn(2 * jitter) - jitter
            delay += stub.rng.randrange(jitter * 2) - jitter
        if delay > 0:
            counters = stub.toxic.counters
            counters.chunks_delayed += 1
            counters.bytes_delayed += len(data)
            counters.delay_us += delay * 1000
            if stub.fired_for != stub.decision:
                stub.fire("delayed")
            due = ts + delay / 1000.0
            await stub.sleep(due - monotonic())
            ts = max(ts, due)
        await link.emit(chain, pos + 1, data, ts)


class _Bandwidth(ToxicKind):
    name = "bandwidth"
    attributes = {"rate": Attr.count(unit="KB/s")}
    effects = ("bytes_throttled", "delay_ms")

    async def on_data(
        self, stub: ToxicStub, link: Link, chain: Chain, pos: int, data: bytes, ts: float
    ) -> None:
        rate: int = stub.toxic.attributes["rate"]  # KB/s, i.e. bytes per millisecond
        if rate <= 0 or stub.removed or (stub.per_exchange and not stub.hit(link.exchange)):
            await link.emit(chain, pos + 1, data, ts)
            return
        counters = stub.toxic.counters
        counters.bytes_throttled += len(data)
        stub.fire_once("throttled")
        piece = rate * 100  # at low rates, send in 100 ms pieces as Toxiproxy does
        view = memoryview(data)
        for start in range(0, len(data), piece):
            part = view[start : start + piece]
            now = monotonic()
            stub.clock = max(stub.clock, now) + len(part) / (rate * 1000.0)
            wait = stub.clock - now
            counters.delay_us += int(wait * 1e6)
            await stub.sleep(wait)
            await link.emit(chain, pos + 1, bytes(part), ts)


class _SlowClose(ToxicKind):
    name = "slow_close"
    attributes = {"delay": Attr.ms()}
    effects = ("closes_delayed",)
    exchange_scope = False  # the end of a stream is no request/reply turn

    async def on_eof(self, stub: ToxicStub, link: Link, chain: Chain, pos: int) -> None:
        delay: int = stub.toxic.attributes["delay"]
        if delay > 0 and not stub.removed:
            stub.toxic.counters.closes_delayed += 1
            stub.fire(f"close delayed {delay} ms")
            await stub.sleep(delay / 1000.0)
        await link.emit_eof(chain, pos + 1)


class _Timeout(ToxicKind):
    """Drop the data; close the connection after ``timeout`` ms (0: hold until removed).

    With scope ``exchange``, the connection flows normally until an exchange rolls
    "yes": from that exchange on its data is dropped and the timer starts.
    """

    name = "timeout"
    attributes = {"timeout": Attr.ms()}
    effects = ("connections_stalled", "connections_closed", "bytes_dropped")

    def on_attach(self, stub: ToxicStub) -> None:
        if not stub.per_exchange:
            self._arm(stub)

    def on_update(self, stub: ToxicStub) -> None:
        if not stub.per_exchange or stub.done_for != -2:
            self._arm(stub)

    def _arm(self, stub: ToxicStub) -> None:
        if stub.timer is not None:
            stub.timer.cancel()
            stub.timer = None
        timeout: int = stub.toxic.attributes["timeout"]
        if stub.active and timeout > 0:
            stub.timer = stub.link.loop.call_later(timeout / 1000.0, self._expire, stub)

    def _expire(self, stub: ToxicStub) -> None:
        stub.timer = None
        if not stub.link.conn.closed:
            stub.toxic.counters.connections_closed += 1
            stub.fire("closed after timeout")
            stub.link.conn.close()

    def on_remove(self, stub: ToxicStub) -> None:
        # Toxiproxy: removing a timeout closes the connections it held
        held = stub.active and (not stub.per_exchange or stub.done_for != -2)
        if held and not stub.link.conn.closed:
            stub.toxic.counters.connections_closed += 1
            stub.link.conn.close()

    async def on_data(
        self, stub: ToxicStub, link: Link, chain: Chain, pos: int, data: bytes, ts: float
    ) -> None:
        if stub.removed:
            await link.emit(chain, pos + 1, data, ts)
            return
        if stub.done_for == -2:  # not stalled yet
            if stub.per_exchange:
                if not stub.hit(link.exchange):
                    await link.emit(chain, pos + 1, data, ts)
                    return
                stub.done_for = stub.decision
                self._arm(stub)
            stub.done_for = stub.decision
            stub.toxic.counters.connections_stalled += 1
            stub.fire("stalled: data dropped")
        stub.toxic.counters.bytes_dropped += len(data)
        # the data is dropped on the ground, as in Toxiproxy


class _ResetPeer(ToxicKind):
    name = "reset_peer"
    attributes = {"timeout": Attr.ms()}
    effects = ("connections_reset",)

    async def _reset(self, stub: ToxicStub, link: Link) -> bool:
        await stub.sleep(stub.toxic.attributes["timeout"] / 1000.0)
        if stub.removed or link.conn.closed:
            return False
        stub.toxic.counters.connections_reset += 1
        stub.fire("reset")
        link.conn.reset()
        return True

    async def on_data(
        self, stub: ToxicStub, link: Link, chain: Chain, pos: int, data: bytes, ts: float
    ) -> None:
        if (stub.per_exchange and not stub.hit(link.exchange)) or not await self._reset(stub, link):
            await link.emit(chain, pos + 1, data, ts)

    async def on_eof(self, stub: ToxicStub, link: Link, chain: Chain, pos: int) -> None:
        # Toxiproxy resets on the end of stream too; an end of stream is no exchange
        if stub.per_exchange or not await self._reset(stub, link):
            await link.emit_eof(chain, pos + 1)


def slice_offsets(rng: random.Random, start: int, end: int, average: int, variation: int) -> list[int]:
    """Toxiproxy's slicer: split ``[start, end)`` about in half until pieces are small."""
    if (end - start) - average <= variation:
        return [start, end]
    jitter = rng.randrange(variation * 2) - variation if variation > 0 else 0
    mid = start + (end - start) // 2 + jitter
    return slice_offsets(rng, start, mid, average, variation) + slice_offsets(
        rng, mid, end, average, variation
    )


class _Slicer(ToxicKind):
    name = "slicer"
    attributes = {"average_size": Attr.count(unit="bytes"),
                  "size_variation": Attr.count(unit="bytes"),
                  "delay": Attr.count(unit="µs", minimum=0)}
    effects = ("chunks_sliced", "slices")

    def validate(self, attrs: dict[str, Any]) -> None:
        if attrs["average_size"] <= 0:
            raise APIError("slicer: attribute average_size must be positive", 400)
        if not attrs["size_variation"] < attrs["average_size"]:
            raise APIError("slicer: attribute size_variation must be smaller than "
                           "average_size", 400)
        if attrs["delay"] > 86_400_000_000:
            raise APIError("slicer: attribute delay must be at most one day (in µs)", 400)

    async def on_data(
        self, stub: ToxicStub, link: Link, chain: Chain, pos: int, data: bytes, ts: float
    ) -> None:
        if stub.per_exchange and not stub.hit(link.exchange):
            await link.emit(chain, pos + 1, data, ts)
            return
        attrs = stub.toxic.attributes
        offsets = slice_offsets(stub.rng, 0, len(data), attrs["average_size"],
                                attrs["size_variation"])
        if len(offsets) > 2:
            counters = stub.toxic.counters
            counters.chunks_sliced += 1
            counters.slices += len(offsets) // 2
            stub.fire_once("sliced")
        delay = attrs["delay"] / 1_000_000.0
        for i in range(1, len(offsets), 2):
            if stub.removed:  # flush the rest in one piece
                await link.emit(chain, pos + 1, data[offsets[i - 1] :], ts)
                return
            await link.emit(chain, pos + 1, data[offsets[i - 1] : offsets[i]], ts)
            await stub.sleep(delay)  # as Toxiproxy: after every piece, a lone one too


class _LimitData(ToxicKind):
    """Close the connection once ``bytes`` have passed (with scope ``exchange``: the
    hit exchange's ``bytes``; its reply is cut there)."""

    name = "limit_data"
    attributes = {"bytes": Attr.count()}
    effects = ("connections_closed", "bytes_cut")

    async def on_data(
        self, stub: ToxicStub, link: Link, chain: Chain, pos: int, data: bytes, ts: float
    ) -> None:
        if stub.removed or (stub.per_exchange and not stub.hit(link.exchange)):
            await link.emit(chain, pos + 1, data, ts)
            return
        limit: int = stub.toxic.attributes["bytes"]
        remaining = max(limit - stub.bytes, 0)
        cut = 0
        if remaining < len(data):
            cut = len(data) - remaining
            data = data[:remaining]
        if data:
            stub.bytes += len(data)
            await link.emit(chain, pos + 1, data, ts)
        if stub.bytes >= limit and not link.conn.closed and not stub.removed:
            stub.toxic.counters.connections_closed += 1
            stub.toxic.counters.bytes_cut += cut
            stub.fire(f"closed after {stub.bytes} bytes")
            link.conn.close()


TOXIPROXY_KINDS: tuple[ToxicKind, ...] = (
    _Latency(), _Bandwidth(), _SlowClose(), _Timeout(), _ResetPeer(), _Slicer(), _LimitData(),
)
