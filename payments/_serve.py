"""Shared process plumbing: logging, uvicorn for ASGI apps, a tiny HTTP server for the
``/healthz`` + ``/metrics`` port of the relay and the worker."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Coroutine
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, disable_created_metrics, generate_latest

from payments._errors import error_body

__all__ = ["install_stop_signals", "run", "serve_asgi", "setup_logging", "start_ops_server"]


def run(main: Coroutine[Any, Any, None]) -> None:
    """Run a service's main coroutine on uvloop when installed, else asyncio."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
        return
    uvloop.run(main)


def setup_logging(service: str) -> logging.Logger:
    """Plain line logs on stderr; secrets and holder details are never passed to them."""
    logging.basicConfig(level=logging.INFO,
                        format=f"%(asctime)s {service} %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per risk call is noise
    disable_created_metrics()  # type: ignore[no-untyped-call]
    return logging.getLogger(f"payments.{service}")


_BAD_REQUEST = error_body("bad_request", "malformed HTTP request")


def _json_400(protocol: type[Any]) -> type[Any]:
    """``protocol`` answering a request it cannot parse in the api's error shape.

    uvicorn answers those itself, in text/plain, before any app code runs; its protocol
    classes expose ``send_400_response`` for exactly this answer, so we override that.
    """

    class JsonBadRequest(protocol):  # type: ignore[misc]
        def send_400_response(self, msg: str) -> None:
            head = [b"HTTP/1.1 400 Bad Request\r\n"]
            for name, value in self.server_state.default_headers:
                head.append(name + b": " + value + b"\r\n")
            head.append(b"content-type: application/json\r\ncontent-length: %d\r\n"
                        b"connection: close\r\n\r\n" % len(_BAD_REQUEST))
            self.transport.write(b"".join(head) + _BAD_REQUEST)
            self.transport.close()

    JsonBadRequest.__name__ = f"JsonBadRequest{protocol.__name__}"
    return JsonBadRequest


def serve_asgi(app: Any, host: str, port: int) -> None:
    """Run an ASGI app with uvicorn on uvloop + httptools (the fastest pure-pip stack);
    malformed HTTP is answered as ``{"error": {...}}`` like every other error."""
    import importlib.util

    import uvicorn

    # uvloop/httptools come with uvicorn[standard]; without them fall back, never fail.
    fast = importlib.util.find_spec("uvloop") and importlib.util.find_spec("httptools")
    if fast:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as protocol
    else:
        from uvicorn.protocols.http.h11_impl import H11Protocol as protocol  # type: ignore[assignment]
    uvicorn.run(app, host=host, port=port, loop="uvloop" if fast else "asyncio",
                http=_json_400(protocol),
                lifespan="on", access_log=False, log_level="warning",
                timeout_keep_alive=30, backlog=2048)


def install_stop_signals(stop: asyncio.Event) -> None:
    """SIGTERM/SIGINT set ``stop`` so loops finish their current batch and exit."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)


async def start_ops_server(host: str, port: int,
                           healthy: Callable[[], bool] = lambda: True) -> asyncio.Server:
    """``GET /healthz`` and ``GET /metrics`` on a raw asyncio server (no framework needed)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            path = head.split(b" ", 2)[1].split(b"?")[0] if b" " in head else b"/"
            if path == b"/metrics":
                status, ctype, body = "200 OK", CONTENT_TYPE_LATEST, generate_latest()
            elif path == b"/healthz":
                ok = healthy()
                status = "200 OK" if ok else "503 Service Unavailable"
                ctype, body = "application/json", b'{"ok":true}' if ok else b'{"ok":false}'
            else:
                status, ctype, body = "404 Not Found", "application/json", b'{"error":"not found"}'
            writer.write(f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: "
                         f"{len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(handle, host, port)
