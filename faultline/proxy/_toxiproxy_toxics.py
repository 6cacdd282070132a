"""Toxiproxy's toxics, with Toxiproxy's semantics (``toxics/*.go``)."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

from faultline.proxy._errors import bad_request
from faultline.proxy._toxic import Chain, ToxicKind, ToxicStub, monotonic

if TYPE_CHECKING:
    from faultline.proxy._link import Link

__all__ = ["TOXIPROXY_KINDS", "slice_offsets"]


class _Latency(ToxicKind):
    name = "latency"
    attributes = {"latency": (int, 0), "jitter": (int, 0)}

    async def on_data(
        self, stub: ToxicStub, link: Link, chain: Chain, pos: int, data: bytes, ts: float
    ) -> None:
        attrs = stub.toxic.attributes
        delay = int(attrs["latency"])
        jitter = int(attrs["jitter"])
        if jitter > 0:
            delay += stub.rng.randrange(jitter * 2) - jitter
        due = ts + delay / 1000.0
        await stub.sleep(due - monotonic())
        await link.emit(chain, pos + 1, data, max(ts, due))


class _Bandwidth(ToxicKind):
    name = "bandwidth"
    attributes = {"rate": (int, 0)}

    async def on_data(
        self, stub: ToxicStub, link: Link, chain: Chain, pos: int, data: bytes, ts: float
    ) -> None:
        rate = int(stub.toxic.attributes["rate"])  # KB/s, i.e. bytes per millisecond
        if rate <= 0 or stub.removed:
            await link.emit(chain, pos + 1, data, ts)
            return
        piece = rate * 100  # at low rates, send in 100 ms pieces as Toxiproxy does
        view = memoryview(data)
        for start in range(0, len(data), piece):
            part = view[start : start + piece]
            stub.clock = max(stub.clock, monotonic()) + len(part) / (rate * 1000.0)
            await stub.sleep(stub.clock - monotonic())
            await link.emit(chain, pos + 1, bytes(part), ts)


class _SlowClose(ToxicKind):
    name = "slow_close"
    attributes = {"delay": (int, 0)}

    async def on_eof(self, stub: ToxicStub, link: Link, chain: Chain, pos: int) -> None:
        await stub.sleep(int(stub.toxic.attributes["delay"]) / 1000.0)
        await link.emit_eof(chain, pos + 1)


class _Timeout(ToxicKind):
    name = "timeout"
    attributes = {"timeout": (int, 0)}

    def on_attach(self, stub: ToxicStub) -> None:
        self._arm(stub)

    def on_update(self, stub: ToxicStub) -> None:
        self._arm(stub)

    def _arm(self, stub: ToxicStub) -> None:
        if stub.timer is not None:
            stub.timer.cancel()
            stub.timer = None
        timeout = int(stub.toxic.attributes["timeout"])
        if stub.active and timeout > 0:
            stub.timer = stub.link.loop.call_later(timeout / 1000.0, self._expire, stub)

    def _expire(self, stub: ToxicStub) -> None:
        stub.timer = None
        stub.fired("closed after timeout")
        stub.link.conn.close()

    def on_remove(self, stub: ToxicStub) -> None:
        if stub.active:  # Toxiproxy: removing a timeout closes the connections it held
            stub.link.conn.close()

    async def on_data(
        self, stub: ToxicStub, link: Link, chain: Chain, pos: int, data: bytes, ts: float
    ) -> None:
        if stub.removed:
            await link.emit(chain, pos + 1, data, ts)
        # else: the data is dropped on the ground, as in Toxiproxy


class _ResetPeer(ToxicKind):
    name = "reset_peer"
    attributes = {"timeout": (int, 0)}

    async def _reset(self, stub: ToxicStub, link: Link) -> bool:
        await stub.sleep(int(stub.toxic.attributes["timeout"]) / 1000.0)
        if stub.removed:
            return False
        stub.fired("reset")
        link.conn.reset()
        return True

    async def on_data(
        self, stub: ToxicStub, link: Link, chain: Chain, pos: int, data: bytes, ts: float
    ) -> None:
        if not await self._reset(stub, link):
            await link.emit(chain, pos + 1, data, ts)

    async def on_eof(self, stub: ToxicStub, link: Link, chain: Chain, pos: int) -> None:
        if not await self._reset(stub, link):
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
    attributes = {"average_size": (int, 0), "size_variation": (int, 0), "delay": (int, 0)}

    def validate(self, attrs: dict[str, Any]) -> None:
        if attrs["average_size"] <= 0:
            raise bad_request("slicer: average_size must be positive")
        if not 0 <= attrs["size_variation"] < attrs["average_size"]:
            raise bad_request("slicer: size_variation must be >= 0 and < average_size")

    async def on_data(
        self, stub: ToxicStub, link: Link, chain: Chain, pos: int, data: bytes, ts: float
    ) -> None:
        attrs = stub.toxic.attributes
        offsets = slice_offsets(
            stub.rng, 0, len(data), int(attrs["average_size"]), int(attrs["size_variation"])
        )
        delay = int(attrs["delay"]) / 1_000_000.0
        for i in range(1, len(offsets), 2):
            if stub.removed:  # flush the rest in one piece
                await link.emit(chain, pos + 1, data[offsets[i - 1] :], ts)
                return
            await link.emit(chain, pos + 1, data[offsets[i - 1] : offsets[i]], ts)
            await stub.sleep(delay)


class _LimitData(ToxicKind):
    name = "limit_data"
    attributes = {"bytes": (int, 0)}

    async def on_data(
        self, stub: ToxicStub, link: Link, chain: Chain, pos: int, data: bytes, ts: float
    ) -> None:
        if stub.removed:
            await link.emit(chain, pos + 1, data, ts)
            return
        remaining = max(int(stub.toxic.attributes["bytes"]) - stub.bytes, 0)
        if remaining < len(data):
            data = data[:remaining]
        if data:
            stub.bytes += len(data)
            await link.emit(chain, pos + 1, data, ts)
        if stub.bytes >= int(stub.toxic.attributes["bytes"]):
            stub.fired(f"closed after {stub.bytes} bytes")
            link.conn.close()


TOXIPROXY_KINDS: tuple[ToxicKind, ...] = (
    _Latency(), _Bandwidth(), _SlowClose(), _Timeout(), _ResetPeer(), _Slicer(), _LimitData(),
)
