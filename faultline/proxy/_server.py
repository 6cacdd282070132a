"""The fault proxy server: the HTTP API and every proxy, on one asyncio loop.

Run it in the foreground (``faultline proxy serve``, :meth:`ProxyServer.serve`) or in a
background thread with its own loop (:meth:`ProxyServer.start` / :meth:`ProxyServer.stop`).
uvloop is used when it is installed.

The API binds loopback unless ``allow_remote_listen`` is given (it has no
authentication unless an ``api_token`` is set, and then only a shared secret), the
same rule as for the proxies' own listeners (``_guard``).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from faultline.proxy._api import APIServer
from faultline.proxy._collection import ProxyCollection
from faultline.proxy._config import load_config
from faultline.proxy._events import EventLog
from faultline.proxy._guard import (
    DEFAULT_MAX_PROXIES,
    DEFAULT_MAX_TOXICS,
    Policy,
    describe,
    is_loopback_host,
)
from faultline.proxy._http import MAX_HEAD
from faultline.proxy._seed import Seeding

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "ProxyServer", "new_event_loop"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8474


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A uvloop loop when uvloop is installed, else asyncio's default."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is an optional extra
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


class ProxyServer:
    """A Toxiproxy-compatible server: ``ProxyServer(host, port, seed).start()``.

    ``port=0`` picks a free port; :attr:`port` and :attr:`url` tell the real one once
    started. ``config`` is a ``toxiproxy.json`` file to populate at start;
    ``events_file`` receives one JSON line per event. Without a ``seed`` one is drawn
    from the OS (:attr:`seed` tells which). ``api_token`` requires
    ``Authorization: Bearer <token>`` on every request; ``allow_remote_listen`` lets the
    API and the proxies listen on other than loopback addresses.
    """

    def __init__(
        self,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        seed: int | None = None,
        *,
        config: str | Path | None = None,
        events_file: str | Path | None = None,
        api_token: str | None = None,
        allow_remote_listen: bool = False,
        max_proxies: int = DEFAULT_MAX_PROXIES,
        max_toxics: int = DEFAULT_MAX_TOXICS,
    ) -> None:
        if not allow_remote_listen and is_loopback_host(host) is not True:
            raise ValueError(f"the API would listen on {host!r}, not a loopback address: the "
                             "API has no authentication beyond an optional token; pass "
                             "--allow-remote-listen (allow_remote_listen=True) to do it anyway")
        if api_token is not None and not api_token.strip():
            raise ValueError("the API token is empty")
        if max_proxies < 1 or max_toxics < 1:
            raise ValueError("max_proxies and max_toxics must be at least 1")
        self.host = host
        self.port = port
        self.seeding = Seeding(seed)
        self.policy = Policy(allow_remote_listen, max_proxies, max_toxics,
                             api_token.strip() if api_token else None)
        self.config = config
        self.events = EventLog(events_file)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.collection: ProxyCollection | None = None

    @property
    def seed(self) -> int:
        """The seed in force (given, set through ``POST /seed``, or drawn at start)."""
        return self.seeding.seed

    @property
    def url(self) -> str:
        """The API's base URL."""
        return f"http://{self.host}:{self.port}"

    # -- foreground ------------------------------------------------------------------
    async def serve(self, on_ready: Callable[[ProxyServer], None] | None = None) -> None:
        """Run until :meth:`shutdown` (or the task is cancelled)."""
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._stopping = asyncio.Event()
        self.collection = ProxyCollection(loop, self.events, self.seeding, self.policy)
        api = APIServer(self.collection, self.events, self.policy.api_token)
        server = await asyncio.start_server(api.handle_client, self.host, self.port,
                                            reuse_address=True, limit=MAX_HEAD)
        self.port = int(server.sockets[0].getsockname()[1])
        try:
            if self.config is not None:
                specs = load_config(self.config)
                await self.collection.populate(specs)
                for spec in specs:
                    for toxic in spec.get("toxics") or []:
                        self.collection.add_toxic(spec["name"], toxic)
            self.events.emit("server_started", url=self.url, seed=self.seed,
                             seed_source=self.seeding.source, limits=describe(self.policy))
            if on_ready is not None:
                on_ready(self)
            self._ready.set()
            await self._stopping.wait()
        finally:
            server.close()
            self.collection.close_all()
            self.events.emit("server_stopped")
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 1.0)

    def shutdown(self) -> None:
        """Ask :meth:`serve` to return (thread-safe)."""
        loop, stopping = self._loop, self._stopping
        if loop is not None and stopping is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stopping.set)

    def run(self, on_ready: Callable[[ProxyServer], None] | None = None) -> None:
        """Serve in the foreground until SIGINT/SIGTERM."""
        loop = new_event_loop()
        asyncio.set_event_loop(loop)

        async def main() -> None:
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.add_signal_handler(sig, self.shutdown)
            await self.serve(on_ready)

        try:
            loop.run_until_complete(main())
        finally:
            self.events.close()
            loop.close()

    # -- background thread ----------------------------------------------------------
    def start(self, timeout: float = 10.0) -> ProxyServer:
        """Start in a daemon thread with its own loop; returns once the API listens."""
        def target() -> None:
            loop = new_event_loop()
            try:
                loop.run_until_complete(self.serve())
            except BaseException as exc:
                self._error = exc
                self._ready.set()
            finally:
                loop.close()

        self._thread = threading.Thread(target=target, name="faultline-proxy", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("faultline proxy did not start in time")
        if self._error is not None:
            raise RuntimeError(f"faultline proxy failed to start: {self._error}")
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the background server and close every proxy."""
        self.shutdown()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self.events.close()

    def call(self, fn: Callable[[], Any], timeout: float = 10.0) -> Any:
        """Run ``fn`` (maybe a coroutine function) on the server's loop; returns its result."""
        loop = self._loop
        if loop is None:
            raise RuntimeError("server not started")

        async def wrapper() -> Any:
            result = fn()
            if asyncio.iscoroutine(result):
                result = await result
            return result

        return asyncio.run_coroutine_threadsafe(wrapper(), loop).result(timeout)

    def __enter__(self) -> ProxyServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
