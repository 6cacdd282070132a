"""One direction of a proxied connection (a link) and its chain of toxics.

With no toxic on the link, bytes never come here: the source endpoint writes straight
to the destination (``_endpoint``). With a toxic on the link, chunks are copied into a
bounded queue stamped with their arrival time and the exchange they belong to, and one
pump task runs them through the chain of toxics in order. When the last toxic goes and
the queue drains, the link falls back to the hot path.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from time import monotonic
from typing import TYPE_CHECKING

from faultline.proxy._endpoint import PAUSE_DST, PAUSE_QUEUE, Endpoint
from faultline.proxy._toxic import Chain, Toxic, ToxicStub

if TYPE_CHECKING:
    from faultline.proxy._connection import Connection

__all__ = ["Link"]

QUEUE_HIGH = 64  # chunks queued in a toxic link before its source is paused
QUEUE_LOW = 16


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
        self.queue: deque[tuple[bytes | None, float, int]] = deque()
        self.pump: asyncio.Task[None] | None = None
        self.pauses = 0
        self.drain: asyncio.Future[None] | None = None
        self.eof_seen = False
        self.eof_done = False
        self.src_lost = False
        self.exchange = 0  # the exchange of the chunk the toxics are handling now
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
        # once this direction is finished (e.g. half_close sent its FIN), nothing more
        # may be written: the bytes go down the toxic path, which drops them
        fast = not self.slow and dst.alive and not self.eof_done
        self.src.out = dst.transport if fast else None

    def feed_eof(self) -> None:
        """The source closed its side (or went away)."""
        if self.eof_seen:
            return
        self.eof_seen = True
        if self.slow:
            self._enqueue(None)
        else:
            self.finish_eof()

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
        if reason == PAUSE_DST and self.drain is not None:
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
        self.queue.append((item, monotonic(), self.conn.exchanges))
        if len(self.queue) >= QUEUE_HIGH:
            self.pause_source(PAUSE_QUEUE)
        if self.pump is None:
            self.pump = self.loop.create_task(self._run_pump())

    def queued_bytes(self) -> int:
        """Bytes waiting in the queue (lost if the connection is cut now)."""
        return sum(len(data) for data, _, _ in self.queue if data is not None)

    async def _run_pump(self) -> None:
        try:
            if self.held is not None:
                await self.held
            while self.queue and not self.conn.closed:
                data, ts, self.exchange = self.queue.popleft()
                if len(self.queue) <= QUEUE_LOW:
                    self.resume_source(PAUSE_QUEUE)
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
            self.resume_source(PAUSE_QUEUE)

    async def emit(self, chain: Chain, pos: int, data: bytes, ts: float) -> None:
        """Pass ``data`` to the toxic at ``pos`` of ``chain``, or write it out."""
        while pos < len(chain):
            stub = chain[pos]
            if not stub.removed:
                await stub.toxic.kind.on_data(stub, self, chain, pos, data, ts)
                return
            pos += 1
        dst = self.dst
        if not dst.alive or not data or self.eof_done:
            return
        assert dst.transport is not None
        dst.transport.write(data)
        if self.pauses & PAUSE_DST:
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
        self.finish_eof()

    def finish_eof(self) -> None:
        """This direction is over: FIN to the destination (or close, if its source is gone)."""
        if self.eof_done:
            return
        self.eof_done = True
        if self.src_lost:
            self.conn.close()  # the source is gone for good: nothing more to relay
            return
        self.dst.shut_write()
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
        """Attach ``toxic`` to this link (with scope ``connection``, toxicity is rolled here)."""
        self.conn.watch_exchanges()
        stub = ToxicStub(toxic, self)
        self.stubs[toxic.name] = stub
        toxic.kind.on_attach(stub)
        self._refresh()
        return stub

    def update_toxic(self, toxic: Toxic, reroll: bool) -> None:
        """The toxic's settings changed; decide again only if its toxicity or scope did."""
        stub = self.stubs.get(toxic.name)
        if stub is None:
            return
        if reroll:
            stub.reroll()
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
