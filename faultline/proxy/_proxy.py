"""A proxy: a listener, its live connections and its toxics (Toxiproxy's ``Proxy``).

Beyond Toxiproxy it keeps what its faults did: each toxic's counters (live ones are
read through the open connections, see ``_effect``), the ``toxic_fired`` log of each
toxic, and the window of its last disable (``enabled: false``, the drill's ``down``).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
import sys
from collections.abc import Callable
from time import monotonic
from typing import Any

from faultline.proxy._connection import Connection
from faultline.proxy._effect import DisableWindow, FiredLog
from faultline.proxy._errors import APIError, bad_request
from faultline.proxy._events import EventLog
from faultline.proxy._link import Link
from faultline.proxy._seed import Seeding
from faultline.proxy._toxic import STREAMS, Toxic

__all__ = ["Proxy", "bind_listener", "format_address", "split_address"]

DEFAULT_HOST = "127.0.0.1"


def split_address(address: str) -> tuple[str, int]:
    """``"host:port"`` (or ``"[v6]:port"``) as ``(host, port)``; ValueError if malformed."""
    host, sep, port_text = address.rpartition(":")
    if not sep:
        raise ValueError(f"address {address!r}: missing port")
    host = host.strip("[]")
    if not port_text.isdigit() or len(port_text) > 5:
        raise ValueError(f"address {address!r}: the port must be a number")
    port = int(port_text)
    if not 0 <= port <= 65535:
        raise ValueError(f"address {address!r}: port out of range")
    return host, port


def format_address(host: str, port: int) -> str:
    """Go's ``host:port`` (IPv6 hosts in brackets)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def bind_listener(listen: str) -> socket.socket:
    """Bind a listening socket for ``listen``; an empty host means 127.0.0.1.

    Raises :class:`APIError` with Go's message (status 500, as Toxiproxy) when the
    address cannot be bound.
    """
    try:
        host, port = split_address(listen) if listen else ("", 0)
    except ValueError as exc:
        raise bad_request(str(exc)) from None
    host = host or DEFAULT_HOST
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _, sockaddr = infos[0]
        sock = socket.socket(family, kind, proto)
    except (OSError, UnicodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise APIError(f"listen tcp {listen}: {reason}", 500) from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(sockaddr)
        sock.listen(1024)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        reason = (exc.strerror or str(exc)).lower()
        if exc.errno == errno.EADDRINUSE:
            reason = "address already in use"
        raise APIError(f"listen tcp {listen}: bind: {reason}", 500) from None
    return sock


class Proxy:
    """One named proxy: ``listen`` -> ``upstream``, with toxics per direction."""

    def __init__(
        self,
        name: str,
        listen: str,
        upstream: str,
        *,
        loop: asyncio.AbstractEventLoop,
        events: EventLog,
        seeding: Seeding,
    ) -> None:
        self.name = name
        self.listen = listen
        self.upstream = upstream
        self.enabled = False
        self.loop = loop
        self.events = events
        self.seeding = seeding
        self.toxics: dict[str, dict[str, Toxic]] = {s: {} for s in STREAMS}
        self.connections: set[Connection] = set()
        self.server: asyncio.Server | None = None
        self.sockname: tuple[str, int] | None = None  # what the listener is bound to
        self._ordinal = 0
        self.bytes_closed = {"upstream": 0, "downstream": 0}
        self.connections_total = 0
        self.window = DisableWindow()  # the current or last disable

    # -- JSON --------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        """Toxiproxy's shape: ``{name, listen, upstream, enabled, toxics}``."""
        return {
            "name": self.name,
            "listen": self.listen,
            "upstream": self.upstream,
            "enabled": self.enabled,
            "toxics": [t.to_json() for t in self.toxic_list()],
        }

    def toxic_list(self) -> list[Toxic]:
        """Every toxic, upstream ones first, each direction in insertion order."""
        return [t for s in STREAMS for t in self.toxics[s].values()]

    def find_toxic(self, name: str) -> Toxic | None:
        """The toxic called ``name``, in either direction."""
        for stream in STREAMS:
            if name in self.toxics[stream]:
                return self.toxics[stream][name]
        return None

    def upstream_address(self) -> tuple[str, int]:
        """Where to connect upstream."""
        return split_address(self.upstream)

    def log(self, message: str) -> None:
        """A line on stderr (the server's log)."""
        print(f"faultline proxy {self.name}: {message}", file=sys.stderr, flush=True)

    # -- lifecycle -----------------------------------------------------------------
    async def start(self, sock: socket.socket | None = None) -> None:
        """Listen (on ``sock`` when already bound) and accept connections."""
        if self.enabled:
            return
        if sock is None:
            sock = bind_listener(self.listen)
        try:
            self.server = await self.loop.create_server(self._accept, sock=sock)
        except OSError as exc:
            sock.close()
            raise APIError(f"listen tcp {self.listen}: {exc}", 500) from None
        host, port = sock.getsockname()[:2]
        self.sockname = (host, port)
        self.listen = format_address(host, port)
        self.enabled = True
        if self.window.since is not None and self.window.until is None:
            self.window.until = monotonic()

    def _accept(self) -> asyncio.BaseProtocol:
        conn = Connection(self, self._ordinal)
        self._ordinal += 1
        self.connections_total += 1
        return conn.client

    def stop(self) -> DisableWindow:
        """Stop listening and cut every live connection; a new disable window opens."""
        if not self.enabled:
            return self.window
        self.enabled = False
        self.sockname = None
        if self.server is not None:
            self.server.close()
            self.server = None
        window = self.window = DisableWindow(monotonic())  # the drill's clock
        for conn in sorted(self.connections, key=lambda c: c.ordinal):
            window.connections_cut += 1
            window.bytes_discarded += conn.queued_bytes()
            conn.abort()
        return window

    def connection_closed(self, conn: Connection) -> None:
        """Bookkeeping when a connection ends."""
        self.connections.discard(conn)
        self.bytes_closed["upstream"] += conn.up.nbytes
        self.bytes_closed["downstream"] += conn.down.nbytes

    def bytes_total(self, direction: str) -> int:
        """Bytes received from the source of ``direction`` so far."""
        live = sum(c.link(direction).nbytes for c in self.connections)
        return self.bytes_closed[direction] + live

    # -- toxics ---------------------------------------------------------------------
    def _each_link(self, direction: str, action: Callable[[Link], object]) -> None:
        # oldest connection first: a toxic added live numbers pooled connections the
        # same way in every run
        for conn in sorted(self.connections, key=lambda c: c.ordinal):
            if not conn.closed:
                action(conn.link(direction))

    def add_toxic(self, toxic: Toxic) -> None:
        """Add a toxic; it applies to live connections at once."""
        def emit(fields: dict[str, Any]) -> None:
            self.events.emit("toxic_fired", proxy=self.name, toxic=toxic.to_json(), **fields)

        scope = "request" if not toxic.kind.rolls_per_connection else toxic.scope
        toxic.bind(self.name, self.seeding, FiredLog(self.loop, scope, emit))
        self.toxics[toxic.stream.lower()][toxic.name] = toxic
        self._each_link(toxic.direction, lambda link: link.add_toxic(toxic))
        self.events.emit("toxic_added", proxy=self.name, toxic=toxic.to_json())

    def update_toxic(self, toxic: Toxic, reroll: bool) -> None:
        """The toxic changed in place: tell the live connections."""
        if toxic.fired is not None and toxic.kind.rolls_per_connection:
            toxic.fired.scope = toxic.scope
        self._each_link(toxic.direction, lambda link: link.update_toxic(toxic, reroll))
        self.events.emit("toxic_updated", proxy=self.name, toxic=toxic.to_json())

    def toxic_report(self, toxic: Toxic) -> dict[str, Any]:
        """``{"seen", "effect"}`` of a toxic, live (open connections included)."""
        live_bytes = live_exchanges = 0
        for conn in self.connections:
            stub = conn.link(toxic.direction).stubs.get(toxic.name)
            if stub is not None:
                b, e = stub.live_seen()
                live_bytes += b
                live_exchanges += e
        return toxic.report(live_bytes, live_exchanges)

    def remove_toxic(self, toxic: Toxic) -> dict[str, Any]:
        """Remove a toxic from the proxy and every live connection; its final counters.

        Everything happens in one step of the loop, so the counters returned are the
        ones of the removal itself (what ``timeout`` closed on removal included).
        """
        del self.toxics[toxic.stream.lower()][toxic.name]
        self._each_link(toxic.direction, lambda link: link.remove_toxic(toxic.name))
        if toxic.fired is not None:
            toxic.fired.flush()
        report = toxic.report()
        self.events.emit("toxic_removed", proxy=self.name, toxic=toxic.to_json(), **report)
        return report

    def remove_all_toxics(self) -> None:
        """Remove every toxic (``/reset``)."""
        for toxic in self.toxic_list():
            self.remove_toxic(toxic)

    def close_listener_socket(self) -> None:
        """Close the listener if any (server shutdown)."""
        if self.server is not None:
            with contextlib.suppress(Exception):
                self.server.close()
