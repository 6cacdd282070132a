"""Faultline's toxics beyond Toxiproxy, one per fate of a request Toxiproxy cannot express.

- ``lost_ack``: the request is processed, its reply never arrives, the client is reset
  (downstream); or the request itself is lost before the server sees it (upstream).
- ``connect_delay``: the TCP/TLS handshake is slow.
- ``half_close``: one direction is shut (a FIN) while the other keeps flowing.
- ``stall``: part of a reply arrives, then the rest hangs without the connection closing.

``http_error`` lives in ``_http_toxic``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from faultline.proxy._toxic import Chain, ToxicKind, ToxicStub, monotonic
from faultline.proxy._validate import Attr

if TYPE_CHECKING:
    from faultline.proxy._link import Link

__all__ = ["EXTRA_KINDS"]


class _LostAck(ToxicKind):
    """Let ``after_bytes`` through, then drop the rest and reset the connection.

    Downstream: the request reached the server, which processed it; its reply is
    dropped and the client sees ECONNRESET instead (the lost acknowledgement).
    Upstream: the request itself is dropped before the server sees it.
    """

    name = "lost_ack"
    attributes = {"after_bytes": Attr.count()}

    def effect_names(self, stream: str) -> tuple[str, ...]:
        dropped = "requests_dropped" if stream == "upstream" else "replies_dropped"
        return (dropped, "connections_reset")

    async def on_data(
        self, stub: ToxicStub, link: Link, chain: Chain, pos: int, data: bytes, ts: float
    ) -> None:
        if stub.removed or (stub.per_exchange and not stub.hit(link.exchange)):
            await link.emit(chain, pos + 1, data, ts)
            return
        allowed = stub.toxic.attributes["after_bytes"] - stub.bytes
        if allowed >= len(data):
            stub.bytes += len(data)
            await link.emit(chain, pos + 1, data, ts)
            return
        if allowed > 0:
            stub.bytes += allowed
            await link.emit(chain, pos + 1, data[:allowed], ts)
        if link.conn.closed or stub.removed:
            return
        counters = stub.toxic.counters
        if link.direction == "upstream":
            counters.requests_dropped += 1
            what = "request dropped, client reset"
        else:
            counters.replies_dropped += 1
            what = "reply dropped, client reset"
        counters.connections_reset += 1
        stub.fire(what)
        link.conn.reset()


class _ConnectDelay(ToxicKind):
    """Delay the upstream connect (the handshake), once per new connection."""

    name = "connect_delay"
    attributes = {"delay": Attr.ms()}
    effects = ("connects_delayed", "delay_ms")
    handles_data = False
    exchange_scope = False  # a connect is no request/reply turn


class _HalfClose(ToxicKind):
    """Shut one direction: ``after_bytes`` pass, then a FIN; the other direction flows on.

    Downstream: the client reads end-of-stream, as if the server had closed its side
    (an idle-timeout close, a server that gave up), while what the client still sends
    keeps reaching the server, which may process it with nobody to read the answer.
    Upstream: the server reads end-of-stream after ``after_bytes`` of the request (a
    client that shut its side), while its replies still reach the client. Bytes that
    arrive on the shut direction afterwards are dropped.
    """

    name = "half_close"
    attributes = {"after_bytes": Attr.count()}
    effects = ("connections_half_closed", "bytes_dropped")

    async def on_data(
        self, stub: ToxicStub, link: Link, chain: Chain, pos: int, data: bytes, ts: float
    ) -> None:
        if stub.removed:
            await link.emit(chain, pos + 1, data, ts)
            return
        if stub.done_for != -2:  # already shut: nothing more goes this way
            stub.toxic.counters.bytes_dropped += len(data)
            return
        if stub.per_exchange and not stub.hit(link.exchange):
            await link.emit(chain, pos + 1, data, ts)
            return
        allowed = stub.toxic.attributes["after_bytes"] - stub.bytes
        if allowed >= len(data):
            stub.bytes += len(data)
            await link.emit(chain, pos + 1, data, ts)
            return
        if allowed > 0:
            stub.bytes += allowed
            await link.emit(chain, pos + 1, data[:allowed], ts)
        if stub.removed or link.conn.closed:
            return
        stub.done_for = stub.decision
        counters = stub.toxic.counters
        counters.connections_half_closed += 1
        counters.bytes_dropped += len(data) - max(allowed, 0)
        side = "client" if link.direction == "downstream" else "server"
        stub.fire(f"{link.direction} shut: FIN to the {side}")
        link.finish_eof()

    async def on_eof(self, stub: ToxicStub, link: Link, chain: Chain, pos: int) -> None:
        if stub.done_for != -2 and not stub.removed:
            return  # the FIN was sent already
        await link.emit_eof(chain, pos + 1)


class _Stall(ToxicKind):
    """Let ``after_bytes`` through, then hold the rest without closing.

    The held bytes wait until the toxic is removed or ``timeout`` ms have passed (0:
    until removed), then flow on; behind them the source is paused by backpressure.
    The connection never closes because of it: the client sees a reply that stops
    mid-way, as with a server stuck in a GC pause or a peer whose window stays shut.
    """

    name = "stall"
    attributes = {"after_bytes": Attr.count(), "timeout": Attr.ms()}
    effects = ("stalls", "bytes_held", "stall_ms")

    async def on_data(
        self, stub: ToxicStub, link: Link, chain: Chain, pos: int, data: bytes, ts: float
    ) -> None:
        if (
            stub.removed
            or (stub.per_exchange and not stub.hit(link.exchange))
            or stub.done_for == stub.decision  # this decision stalled once already
        ):
            await link.emit(chain, pos + 1, data, ts)
            return
        allowed = stub.toxic.attributes["after_bytes"] - stub.bytes
        if allowed >= len(data):
            stub.bytes += len(data)
            await link.emit(chain, pos + 1, data, ts)
            return
        if allowed > 0:
            stub.bytes += allowed
            await link.emit(chain, pos + 1, data[:allowed], ts)
            data = data[allowed:]
        stub.done_for = stub.decision
        counters = stub.toxic.counters
        counters.stalls += 1
        counters.bytes_held += len(data)
        stub.fire("stalled")
        timeout = stub.toxic.attributes["timeout"]
        stub.clock = monotonic()  # when the stall began (the slot bandwidth uses)
        try:
            await stub.sleep(timeout / 1000.0 if timeout > 0 else None)
        finally:
            self._account(stub)
        await link.emit(chain, pos + 1, data, ts)

    def _account(self, stub: ToxicStub) -> None:
        if stub.clock:
            stub.toxic.counters.stall_us += int((monotonic() - stub.clock) * 1e6)
            stub.clock = 0.0

    def on_remove(self, stub: ToxicStub) -> None:
        # the sleeper wakes after the removal's report is taken: count the stall now
        self._account(stub)


EXTRA_KINDS: tuple[ToxicKind, ...] = (_LostAck(), _ConnectDelay(), _HalfClose(), _Stall())
