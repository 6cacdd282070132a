"""Toxics: Toxiproxy's, with its semantics, and Faultline's extra ones.

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
    "KINDS",
    "STREAMS",
    "Toxic",
    "ToxicKind",
    "ToxicStub",
    "derive_rng",
    "parse_attributes",
    "parse_toxicity",
    "slice_offsets",
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
        self.http: _HTTPState | None = None
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
        handle = loop.call_later(delay, _done, fut)
        self.waiters.add(fut)
        try:
            await fut
        finally:
            handle.cancel()
            self.waiters.discard(fut)

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


class _LostAck(ToxicKind):
    """Let the request through, then reset the client before any reply byte reaches it."""

    name = "lost_ack"
    attributes = {"after_bytes": (int, 0)}

    async def on_data(
        self, stub: ToxicStub, link: Link, chain: Chain, pos: int, data: bytes, ts: float
    ) -> None:
        if stub.removed:
            await link.emit(chain, pos + 1, data, ts)
            return
        allowed = int(stub.toxic.attributes["after_bytes"]) - stub.bytes
        if allowed >= len(data):
            stub.bytes += len(data)
            await link.emit(chain, pos + 1, data, ts)
            return
        if allowed > 0:
            stub.bytes += allowed
            await link.emit(chain, pos + 1, data[:allowed], ts)
        stub.fired("reply dropped, client reset")
        link.conn.reset()


class _ConnectDelay(ToxicKind):
    """Delay the upstream connect (the handshake), once per new connection."""

    name = "connect_delay"
    attributes = {"delay": (int, 0)}
    handles_data = False


class _HTTPState:
    __slots__ = ("body_left", "head", "passthrough")

    def __init__(self) -> None:
        self.head = b""
        self.body_left = 0
        self.passthrough = False


_REASONS = {
    400: "Bad Request", 408: "Request Timeout", 429: "Too Many Requests",
    500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
    504: "Gateway Timeout",
}


class _HTTPError(ToxicKind):
    """Answer HTTP requests with ``status`` (probability = toxicity) instead of forwarding.

    It watches requests from the client whatever its ``stream``, and rolls toxicity per
    request. An injected response closes the connection (``Connection: close``).
    """

    name = "http_error"
    attributes = {"status": (int, 503), "retry_after": (int, 0), "body": (str, "")}
    rolls_per_connection = False

    def direction(self, stream: str) -> str:
        return "upstream"

    def validate(self, attrs: dict[str, Any]) -> None:
        if not 100 <= attrs["status"] <= 599:
            raise bad_request("http_error: status must be between 100 and 599")
        if attrs["retry_after"] < 0:
            raise bad_request("http_error: retry_after must be >= 0")

    def response(self, stub: ToxicStub) -> bytes:
        """The injected response, as bytes on the wire."""
        attrs = stub.toxic.attributes
        status = int(attrs["status"])
        body = (str(attrs["body"]) or
                f'{{"error": "injected by faultline http_error", "status": {status}}}')
        raw = body.encode()
        lines = [
            f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}",
            "Content-Type: application/json",
            f"Content-Length: {len(raw)}",
            "Connection: close",
        ]
        if int(attrs["retry_after"]) > 0:
            lines.append(f"Retry-After: {int(attrs['retry_after'])}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + raw

    async def on_data(
        self, stub: ToxicStub, link: Link, chain: Chain, pos: int, data: bytes, ts: float
    ) -> None:
        state = stub.http
        if state is None:
            state = stub.http = _HTTPState()
        while data:
            if stub.removed or state.passthrough:
                await link.emit(chain, pos + 1, data, ts)
                return
            if state.body_left > 0:
                n = min(state.body_left, len(data))
                state.body_left -= n
                await link.emit(chain, pos + 1, data[:n], ts)
                data = data[n:]
                continue
            buffered = state.head + data
            end = buffered.find(b"\r\n\r\n")
            if end < 0:
                state.head = buffered
                return
            head, data = buffered[: end + 4], buffered[end + 4 :]
            state.head = b""
            if stub.roll():
                stub.fired(f"answered {stub.toxic.attributes['status']}")
                link.conn.answer_client(self.response(stub))
                return
            state.body_left, state.passthrough = _body_length(head)
            await link.emit(chain, pos + 1, head, ts)


def _body_length(head: bytes) -> tuple[int, bool]:
    """(Content-Length, passthrough) of a request head; chunked bodies pass through."""
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        key = name.strip().lower()
        if key == b"transfer-encoding" and b"chunked" in value.lower():
            return 0, True
        if key == b"content-length":
            try:
                length = int(value.strip())
            except ValueError:
                return 0, True
    return length, False


KINDS: dict[str, ToxicKind] = {
    kind.name: kind
    for kind in (
        _Latency(), _Bandwidth(), _SlowClose(), _Timeout(), _ResetPeer(), _Slicer(),
        _LimitData(), _LostAck(), _ConnectDelay(), _HTTPError(),
    )
}


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
        self, name: str, type: str, stream: str, toxicity: float, attributes: dict[str, Any]
    ) -> None:
        self.name = name
        self.type = type
        self.kind = KINDS[type]
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

