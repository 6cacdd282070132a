"""One proxied TCP connection: the client's socket, the upstream's, a link each way.

It also numbers the connection's exchanges. An *exchange* is one request/reply turn:
it begins when client-to-server bytes arrive after server-to-client bytes have been
read since the previous client bytes (or with the first client bytes). Every chunk a
toxic handles carries the number of the exchange it belongs to, so a toxic with
``scope: "exchange"`` can roll once per turn, and ``seen.exchanges`` can be counted.
"Server bytes read" means read by the proxy from the upstream, whether or not a toxic
then delivered them: a dropped reply still ends its exchange. Pipelined protocols
(several requests in flight before any reply) make several requests one exchange.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from faultline.proxy._endpoint import Endpoint
from faultline.proxy._link import Link

if TYPE_CHECKING:
    from faultline.proxy._proxy import Proxy

__all__ = ["Connection"]


class Connection:
    """A client connection accepted by a proxy, and its upstream connection."""

    def __init__(self, proxy: Proxy, ordinal: int) -> None:
        self.proxy = proxy
        self.loop = proxy.loop
        self.ordinal = ordinal
        self.closed = False
        # exchanges begun while watched; counted by the client endpoint's buffer_updated:
        # client bytes arriving when the server's byte count moved since ``mark``
        self.exchanges = 0
        self.mark = -1  # server bytes read when client bytes last arrived
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

    # -- exchanges -----------------------------------------------------------------
    def watch_exchanges(self) -> None:
        """Number exchanges from now on (a toxic is being attached)."""
        if not self.client.watch:
            self.client.watch = True
            self.mark = -1  # what flowed before is unknown: the next client bytes begin one

    # -- life cycle ---------------------------------------------------------------
    def client_connected(self) -> None:
        """The client was accepted: connect upstream (after any ``connect_delay``)."""
        self.proxy.connections.add(self)
        self.connect_task = self.loop.create_task(self._connect())

    async def _connect(self) -> None:
        delay = 0.0
        for link in (self.up, self.down):
            for stub in link.stubs.values():
                if stub.toxic.type == "connect_delay" and stub.active:
                    ms = int(stub.toxic.attributes["delay"])
                    if ms > 0:
                        delay += ms / 1000.0
                        stub.toxic.counters.connects_delayed += 1
                        stub.toxic.counters.delay_us += ms * 1000
                        stub.fire(f"connect delayed {ms} ms")
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

    def queued_bytes(self) -> int:
        """Bytes read but not yet delivered by a toxic link (lost if cut now)."""
        return self.up.queued_bytes() + self.down.queued_bytes()

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
