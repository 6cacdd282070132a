"""One socket of a proxied connection, and the hot path.

The hot path is a :class:`asyncio.BufferedProtocol`: the kernel reads into a
preallocated buffer and, with no toxic on the link, ``buffer_updated`` writes that
memoryview straight to the other transport (no per-chunk allocation, no task switch).
Backpressure is the transports' own: when the destination's write buffer fills, its
``pause_writing`` pauses reading on the source.

The client's endpoint also marks where exchanges (request/reply turns) begin, but only
on connections that carry a toxic (``watch``): one attribute test per chunk otherwise.
uvloop binds ``buffer_updated`` once per transport, so the test cannot be swapped in
and out by replacing the method; it is the cheapest form the check can take.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from faultline.proxy._connection import Connection
    from faultline.proxy._link import Link

__all__ = ["BUFFER_SIZE", "PAUSE_DST", "PAUSE_QUEUE", "Endpoint"]

BUFFER_SIZE = 64 * 1024
PAUSE_DST = 1
PAUSE_QUEUE = 2
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
        self.watch = False  # the client's side of a connection with toxics: mark exchanges

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
        if self.watch:  # a new exchange? (see _connection; inline: runs per chunk)
            conn = self.conn
            server = conn.upstream.nbytes
            if server != conn.mark:
                conn.mark = server
                conn.exchanges += 1
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
        self.writer.pause_source(PAUSE_DST)

    def resume_writing(self) -> None:
        self.writer.resume_source(PAUSE_DST)

    def connection_lost(self, exc: Exception | None) -> None:
        was_alive = self.alive
        self.alive = False
        self.writer.refresh_fast_path()
        self.writer.resume_source(PAUSE_DST)  # wake a pump waiting to write here
        if not was_alive:
            return  # we closed it ourselves
        reader = self.reader
        reader.src_lost = True
        if reader.eof_done:
            self.conn.close()  # nothing can be delivered here any more
        else:
            reader.feed_eof()  # relay what is queued, then close the connection

    def shut_write(self) -> bool:
        """Send a FIN (half-close our sending side); False if that is not possible."""
        transport = self.transport
        if not self.alive or transport is None or not transport.can_write_eof():
            return False
        with contextlib.suppress(OSError, RuntimeError):
            transport.write_eof()
            return True
        return False

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
