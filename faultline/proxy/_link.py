"""One proxied TCP connection: two endpoints and a byte pump (a link) per direction.

The hot path is a :class:`asyncio.BufferedProtocol`: the kernel reads into a
preallocated buffer and, with no toxic on the link, ``buffer_updated`` writes that
memoryview straight to the other transport (no per-chunk allocation, no task switch).
Backpressure is the transports' own: when the destination's write buffer fills, its
``pause_writing`` pauses reading on the source.

With a toxic on the link, chunks are copied into a bounded queue stamped with their
arrival time, and one pump task runs them through the chain of toxics in order. When
the last toxic goes and the queue drains, the link falls back to the hot path.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections import deque
from time import monotonic
from typing import TYPE_CHECKING, cast

from faultline.proxy._toxic import Chain, Toxic, ToxicStub, derive_rng

if TYPE_CHECKING:
    from faultline.proxy._proxy import Proxy

__all__ = ["Connection", "Endpoint", "Link"]

BUFFER_SIZE = 64 * 1024
QUEUE_HIGH = 64  # chunks queued in a toxic link before its source is paused
QUEUE_LOW = 16
_PAUSE_DST = 1
_PAUSE_QUEUE = 2
_LINGER_ZERO = struct.pack("ii", 1, 0)


class Endpoint(asyncio.BufferedProtocol):
    """One socket of a proxied connection (the client's, or the upstream's)."""

    def __init__(self, conn: Connection, role: str) -> None:
        self.conn = conn
        self.role = role
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray(BUFFER_SIZE)
        self.view = memoryview(self.buf)
        self.reader: Link  # the link that reads from this endpoint
        self.writer: Link  # the link that writes to this endpoint
        self.alive = False
        # where buffer_updated writes directly; None sends chunks down the toxic path
        self.out: asyncio.Transport | None = None
        self.nbytes = 0

    def renew(self) -> None:
        """A fresh read buffer: the transport still holds a view of the old one."""
        self.buf = bytearray(BUFFER_SIZE)
        self.view = memoryview(self.buf)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, only alike
        self.transport = transport = cast(asyncio.Transport, transport)
        self.alive = True
        self.writer.refresh_fast_path()
        if self.role == "client":
            transport.pause_reading()  # until upstream is connected
            self.conn.client_connected()

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.view

    def buffer_updated(self, nbytes: int) -> None:
        # The hot path: no toxic on the link, write the filled buffer straight out.
        out = self.out
        self.nbytes += nbytes
        if out is None:
            self.reader.feed(nbytes)
            return
        out.write(self.view[:nbytes])
        if out.get_write_buffer_size():
            self.renew()

    def eof_received(self) -> bool:
        self.reader.feed_eof()
        return True  # keep the transport: the other direction may still flow

    def pause_writing(self) -> None:
        self.writer.pause_source(_PAUSE_DST)

    def resume_writing(self) -> None:
        self.writer.resume_source(_PAUSE_DST)

    def connection_lost(self, exc: Exception | None) -> None:
        was_alive = self.alive
        self.alive = False
        self.writer.refresh_fast_path()
        self.writer.resume_source(_PAUSE_DST)  # wake a pump waiting to write here
        if not was_alive:
            return  # we closed it ourselves
        reader = self.reader
        reader.src_lost = True
        if reader.eof_done:
            self.conn.close()  # nothing can be delivered here any more
        else:
            reader.feed_eof()  # relay what is queued, then close the connection

    def close(self, reset: bool = False, abort: bool = False) -> None:
        """Close gracefully (flush, FIN), abort, or reset (SO_LINGER 0, RST)."""
        if not self.alive or self.transport is None:
            return
        self.alive = False
        self.writer.refresh_fast_path()
        transport = self.transport
        if reset:
            sock = transport.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_ZERO)
            transport.abort()
        elif abort:
            transport.abort()
        else:
            transport.close()


class Link:
    """One direction of a connection (``upstream``: client to server) and its toxics."""

    def __init__(self, conn: Connection, direction: str, src: Endpoint, dst: Endpoint) -> None:
        self.conn = conn
        self.loop = conn.loop
        self.direction = direction
        self.src = src
        self.dst = dst
        self.stubs: dict[str, ToxicStub] = {}
        self.chain: Chain = ()
        self.slow = False
        self.queue: deque[tuple[bytes | None, float]] = deque()
        self.pump: asyncio.Task[None] | None = None
        self.pauses = 0
        self.drain: asyncio.Future[None] | None = None
        self.eof_seen = False
        self.eof_done = False
        self.src_lost = False
        # the client's link holds its data until the upstream is connected
        self.held: asyncio.Future[None] | None = None

    # -- the hot path -------------------------------------------------------------
    @property
    def nbytes(self) -> int:
        """Bytes read from this link's source so far."""
        return self.src.nbytes

    def feed(self, n: int) -> None:
        """``n`` bytes arrived in the source's buffer and the hot path is off."""
        if self.slow:
            self._enqueue(bytes(self.src.view[:n]))
        # else: the destination is gone; the bytes have nowhere to go

    def refresh_fast_path(self) -> None:
        """Let the source write straight to the destination when nothing is in between."""
        dst = self.dst
        self.src.out = dst.transport if (not self.slow and dst.alive) else None

    def feed_eof(self) -> None:
        """The source closed its side (or went away)."""
        if self.eof_seen:
            return
        self.eof_seen = True
        if self.slow:
            self._enqueue(None)
        else:
            self._finish_eof()

    # -- flow control ---------------------------------------------------------------
    def pause_source(self, reason: int) -> None:
        """Stop reading from the source (destination full, or toxic queue full)."""
        was = self.pauses
        self.pauses |= reason
        if not was and self.src.alive and self.src.transport is not None:
            with contextlib.suppress(RuntimeError):
                self.src.transport.pause_reading()

    def resume_source(self, reason: int) -> None:
        """Lift one reason to pause; read again when none is left."""
        if reason == _PAUSE_DST and self.drain is not None:
            if not self.drain.done():
                self.drain.set_result(None)
            self.drain = None
        if not self.pauses & reason:
            return
        self.pauses &= ~reason
        if not self.pauses and self.src.alive and self.src.transport is not None:
            with contextlib.suppress(RuntimeError):
                self.src.transport.resume_reading()

    # -- the toxic path -------------------------------------------------------------
    def _enqueue(self, item: bytes | None) -> None:
        self.queue.append((item, monotonic()))
        if len(self.queue) >= QUEUE_HIGH:
            self.pause_source(_PAUSE_QUEUE)
        if self.pump is None:
            self.pump = self.loop.create_task(self._run_pump())

    async def _run_pump(self) -> None:
        try:
            if self.held is not None:
                await self.held
            while self.queue and not self.conn.closed:
                data, ts = self.queue.popleft()
                if len(self.queue) <= QUEUE_LOW:
                    self.resume_source(_PAUSE_QUEUE)
                if data is None:
                    await self.emit_eof(self.chain, 0)
                else:
                    await self.emit(self.chain, 0, data, ts)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a toxic failed: never leave a connection half-dead
            self.conn.proxy.log(f"toxic failed on {self.direction}: {exc!r}")
            self.conn.close()
        finally:
            self.pump = None
            self._refresh()
            self.resume_source(_PAUSE_QUEUE)

    async def emit(self, chain: Chain, pos: int, data: bytes, ts: float) -> None:
        """Pass ``data`` to the toxic at ``pos`` of ``chain``, or write it out."""
        while pos < len(chain):
            stub = chain[pos]
            if not stub.removed:
                await stub.toxic.kind.on_data(stub, self, chain, pos, data, ts)
                return
            pos += 1
        dst = self.dst
        if not dst.alive or not data:
            return
        assert dst.transport is not None
        dst.transport.write(data)
        if self.pauses & _PAUSE_DST:
            if self.drain is None:
                self.drain = self.loop.create_future()
            await self.drain

    async def emit_eof(self, chain: Chain, pos: int) -> None:
        """Pass the end of stream to the toxic at ``pos``, or finish the direction."""
        while pos < len(chain):
            stub = chain[pos]
            if not stub.removed:
                await stub.toxic.kind.on_eof(stub, self, chain, pos)
                return
            pos += 1
        self._finish_eof()

    def _finish_eof(self) -> None:
        if self.eof_done:
            return
        self.eof_done = True
        if self.src_lost:
            self.conn.close()  # the source is gone for good: nothing more to relay
            return
        dst = self.dst
        if dst.alive and dst.transport is not None and dst.transport.can_write_eof():
            with contextlib.suppress(OSError, RuntimeError):
                dst.transport.write_eof()
        self.conn.direction_done()

    # -- toxics, live ------------------------------------------------------------------
    def _refresh(self) -> None:
        self.chain = tuple(
            s for s in self.stubs.values() if s.active and s.toxic.kind.handles_data
        )
        self.slow = (
            bool(self.chain) or self.pump is not None or bool(self.queue) or self.held is not None
        )
        self.refresh_fast_path()

    def add_toxic(self, toxic: Toxic) -> ToxicStub:
        """Attach ``toxic`` to this link (toxicity is rolled here, once)."""
        proxy = self.conn.proxy
        rng = derive_rng(proxy.seed, proxy.name, self.conn.ordinal, toxic.name)
        stub = ToxicStub(toxic, self, rng)
        self.stubs[toxic.name] = stub
        toxic.kind.on_attach(stub)
        self._refresh()
        return stub

    def update_toxic(self, toxic: Toxic, toxicity_changed: bool) -> None:
        """The toxic's settings changed; re-roll only if its toxicity did."""
        stub = self.stubs.get(toxic.name)
        if stub is None:
            return
        stub.toxic = toxic
        if toxicity_changed and toxic.kind.rolls_per_connection:
            stub.active = stub.roll()
        toxic.kind.on_update(stub)
        self._refresh()

    def remove_toxic(self, name: str) -> None:
        """Detach a toxic; data it was holding moves on (or, for timeout, closes)."""
        stub = self.stubs.pop(name, None)
        if stub is None:
            return
        stub.detach()
        self._refresh()
        stub.toxic.kind.on_remove(stub)


class Connection:
    """A client connection accepted by a proxy, and its upstream connection."""

    def __init__(self, proxy: Proxy, ordinal: int) -> None:
        self.proxy = proxy
        self.loop = proxy.loop
        self.ordinal = ordinal
        self.closed = False
        self.client = Endpoint(self, "client")
        self.upstream = Endpoint(self, "upstream")
        self.up = Link(self, "upstream", self.client, self.upstream)
        self.down = Link(self, "downstream", self.upstream, self.client)
        self.client.reader = self.up
        self.client.writer = self.down
        self.upstream.reader = self.down
        self.upstream.writer = self.up
        self.connect_task: asyncio.Task[None] | None = None
        self.up.held = self.loop.create_future()
        self.up._refresh()
        for toxic in proxy.toxic_list():
            self.link(toxic.direction).add_toxic(toxic)

    def link(self, direction: str) -> Link:
        """The link of one direction (``upstream`` or ``downstream``)."""
        return self.up if direction == "upstream" else self.down

    def client_connected(self) -> None:
        """The client was accepted: connect upstream (after any ``connect_delay``)."""
        self.proxy.connections.add(self)
        self.connect_task = self.loop.create_task(self._connect())

    async def _connect(self) -> None:
        delay = 0.0
        for link in (self.up, self.down):
            for stub in link.stubs.values():
                if stub.toxic.type == "connect_delay" and stub.active:
                    delay += int(stub.toxic.attributes["delay"]) / 1000.0
                    stub.fired(f"connect delayed {stub.toxic.attributes['delay']} ms")
        try:
            if delay > 0:
                await asyncio.sleep(delay)
            host, port = self.proxy.upstream_address()
            await self.loop.create_connection(lambda: self.upstream, host, port)
        except (OSError, ValueError) as exc:
            self.proxy.log(f"unable to open connection to upstream {self.proxy.upstream}: {exc}")
            self.close()
            return
        finally:
            self.connect_task = None
        if self.closed:
            self.upstream.close(abort=True)
            return
        held, self.up.held = self.up.held, None
        if held is not None and not held.done():
            held.set_result(None)
        self.up._refresh()
        if self.client.alive and self.client.transport is not None:
            self.client.transport.resume_reading()

    def direction_done(self) -> None:
        """One direction finished; when both have, close the connection."""
        if self.up.eof_done and self.down.eof_done:
            self.close()

    def _teardown(self) -> None:
        self.closed = True
        self.proxy.connection_closed(self)
        if self.connect_task is not None:
            self.connect_task.cancel()
        current = asyncio.current_task(self.loop) if self.loop.is_running() else None
        for link in (self.up, self.down):
            for stub in link.stubs.values():
                stub.detach()
            if link.pump is not None and link.pump is not current:
                link.pump.cancel()
            link.queue.clear()

    def close(self) -> None:
        """Close both sockets gracefully (buffered data is flushed first)."""
        if self.closed:
            return
        self._teardown()
        self.client.close()
        self.upstream.close()

    def abort(self) -> None:
        """Close both sockets at once (proxy disabled or deleted)."""
        if self.closed:
            return
        self._teardown()
        self.client.close(abort=True)
        self.upstream.close(abort=True)

    def reset(self) -> None:
        """Reset both sockets: SO_LINGER 0 then close, so the peers see ECONNRESET."""
        if self.closed:
            return
        self._teardown()
        self.client.close(reset=True)
        self.upstream.close(reset=True)

    def answer_client(self, response: bytes) -> None:
        """Send ``response`` to the client instead of the upstream's, then close."""
        if self.client.alive and self.client.transport is not None:
            self.client.transport.write(response)
        self.close()

    def toxic_fired(self, toxic: Toxic, what: str) -> None:
        """A toxic acted on this connection: record it as an event."""
        self.proxy.events.emit(
            "toxic_fired", proxy=self.proxy.name, toxic=toxic.to_json(),
            connection=self.ordinal, detail=what,
        )
