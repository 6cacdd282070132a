"""Toxiproxy's HTTP API on a small hand-written asyncio HTTP/1.1 server.

Routes, JSON shapes, status codes and error messages follow Toxiproxy 2.x's ``api.go``;
``GET /events`` is Faultline's addition.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from faultline.proxy._collection import ProxyCollection
from faultline.proxy._errors import APIError, bad_request
from faultline.proxy._events import EventLog

__all__ = ["TOXIPROXY_VERSION", "APIServer"]

TOXIPROXY_VERSION = "2.12.0"
MAX_BODY = 4 * 1024 * 1024

Query = dict[str, list[str]]
Handler = Callable[..., Awaitable[tuple[int, Any]]]
_NO_BODY = object()  # a 204 / empty response


class _Response:
    __slots__ = ("body", "content_type", "status")

    def __init__(self, status: int, body: bytes, content_type: str) -> None:
        self.status = status
        self.body = body
        self.content_type = content_type


_REASONS = {200: "OK", 201: "Created", 204: "No Content", 400: "Bad Request",
            403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
            409: "Conflict", 413: "Payload Too Large", 500: "Internal Server Error"}


class APIServer:
    """The HTTP API over a :class:`ProxyCollection`."""

    def __init__(self, collection: ProxyCollection, events: EventLog) -> None:
        self.collection = collection
        self.events = events
        self._routes: list[tuple[re.Pattern[str], dict[str, Handler]]] = [
            (re.compile(r"^/reset$"), {"POST": self._reset}),
            (re.compile(r"^/proxies$"), {"GET": self._proxy_index, "POST": self._proxy_create}),
            (re.compile(r"^/populate$"), {"POST": self._populate}),
            (re.compile(r"^/proxies/([^/]+)$"), {
                "GET": self._proxy_show, "POST": self._proxy_update,
                "PATCH": self._proxy_update, "DELETE": self._proxy_delete}),
            (re.compile(r"^/proxies/([^/]+)/toxics$"), {
                "GET": self._toxic_index, "POST": self._toxic_create}),
            (re.compile(r"^/proxies/([^/]+)/toxics/([^/]+)$"), {
                "GET": self._toxic_show, "POST": self._toxic_update,
                "PATCH": self._toxic_update, "DELETE": self._toxic_delete}),
            (re.compile(r"^/version$"), {"GET": self._version}),
            (re.compile(r"^/metrics$"), {"GET": self._metrics}),
            (re.compile(r"^/events$"), {"GET": self._events}),
        ]

    # -- HTTP plumbing ---------------------------------------------------------------
    async def handle_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve requests on one keep-alive connection."""
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                    return
                try:
                    keep_alive, response = await self._one_request(head, reader)
                except (ConnectionError, asyncio.IncompleteReadError):
                    return
                except Exception as exc:  # a malformed request: answer, then hang up
                    keep_alive, response = False, _error_response(bad_request(str(exc)))
                writer.write(_encode(response, keep_alive))
                await writer.drain()
                if not keep_alive:
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def _one_request(self, head: bytes, reader: asyncio.StreamReader) -> tuple[bool, _Response]:
        lines = head.decode("latin-1").split("\r\n")
        try:
            method, target, version = lines[0].split(" ", 2)
        except ValueError:
            return False, _error_response(APIError("malformed request line", 400))
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if ":" in line:
                key, _, value = line.partition(":")
                headers[key.strip().lower()] = value.strip()
        keep_alive = version == "HTTP/1.1"
        conn_header = headers.get("connection", "").lower()
        if conn_header == "close":
            keep_alive = False
        elif conn_header == "keep-alive":
            keep_alive = True
        body = b""
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body = await _read_chunked(reader)
        elif headers.get("content-length"):
            try:
                length = int(headers["content-length"])
            except ValueError:
                return False, _error_response(APIError("bad Content-Length", 400))
            if length > MAX_BODY:
                return False, _error_response(APIError("request body too large", 413))
            body = await reader.readexactly(length)
        if headers.get("user-agent", "").startswith("Mozilla/"):
            # as Toxiproxy: a browser must not drive the API (CSRF from a web page)
            return keep_alive, _Response(403, b"User agent not allowed\n", "text/plain; charset=utf-8")
        return keep_alive, await self.dispatch(method.upper(), target, body)

    async def dispatch(self, method: str, target: str, body: bytes) -> _Response:
        """Route one request; every error becomes Toxiproxy's JSON error body."""
        parts = urlsplit(target)
        path = parts.path
        for pattern, methods in self._routes:
            match = pattern.match(path)
            if match is None:
                continue
            handler = methods.get(method)
            if handler is None:
                return _Response(405, b"", "text/plain; charset=utf-8")
            args = [unquote(g) for g in match.groups()]
            try:
                status, payload = await handler(*args, body=body, query=parse_qs(parts.query))
            except APIError as exc:
                return _error_response(exc)
            except Exception as exc:
                return _error_response(APIError(str(exc) or type(exc).__name__, 500))
            if payload is _NO_BODY:
                return _Response(status, b"", "")
            if isinstance(payload, _Response):
                return payload
            return _Response(status, json.dumps(payload).encode(), "application/json")
        return _Response(404, b"404 page not found\n", "text/plain; charset=utf-8")

    # -- handlers --------------------------------------------------------------------
    async def _reset(self, *, body: bytes, query: Query) -> tuple[int, Any]:
        await self.collection.reset()
        return 204, _NO_BODY

    async def _proxy_index(self, *, body: bytes, query: Query) -> tuple[int, Any]:
        return 200, {n: p.to_json() for n, p in self.collection.proxies.items()}

    async def _proxy_create(self, *, body: bytes, query: Query) -> tuple[int, Any]:
        proxy = await self.collection.create(_json(body))
        return 201, proxy.to_json()

    async def _populate(self, *, body: bytes, query: Query) -> tuple[int, Any]:
        try:
            proxies = await self.collection.populate(_json(body))
        except APIError as exc:
            return exc.status, {**exc.to_json(), "proxies": None}
        return 201, {"proxies": [p.to_json() for p in proxies]}

    async def _proxy_show(self, name: str, *, body: bytes, query: Query) -> tuple[int, Any]:
        return 200, self.collection.get(name).to_json()

    async def _proxy_update(self, name: str, *, body: bytes, query: Query) -> tuple[int, Any]:
        self.collection.get(name)  # 404 before 400, as Toxiproxy
        proxy = await self.collection.update(name, _json(body))
        return 200, proxy.to_json()

    async def _proxy_delete(self, name: str, *, body: bytes, query: Query) -> tuple[int, Any]:
        self.collection.delete(name)
        return 204, _NO_BODY

    async def _toxic_index(self, name: str, *, body: bytes, query: Query) -> tuple[int, Any]:
        return 200, [t.to_json() for t in self.collection.get(name).toxic_list()]

    async def _toxic_create(self, name: str, *, body: bytes, query: Query) -> tuple[int, Any]:
        self.collection.get(name)
        return 200, self.collection.add_toxic(name, _json(body)).to_json()

    async def _toxic_show(self, name: str, toxic: str, *, body: bytes, query: Query) -> tuple[int, Any]:
        return 200, self.collection.get_toxic(name, toxic).to_json()

    async def _toxic_update(self, name: str, toxic: str, *, body: bytes, query: Query) -> tuple[int, Any]:
        self.collection.get_toxic(name, toxic)
        return 200, self.collection.update_toxic(name, toxic, _json(body)).to_json()

    async def _toxic_delete(self, name: str, toxic: str, *, body: bytes, query: Query) -> tuple[int, Any]:
        self.collection.remove_toxic(name, toxic)
        return 204, _NO_BODY

    async def _version(self, *, body: bytes, query: Query) -> tuple[int, Any]:
        text = json.dumps({"version": TOXIPROXY_VERSION, "server": "faultline"}) + "\n"
        return 200, _Response(200, text.encode(), "application/json;charset=utf-8")

    async def _metrics(self, *, body: bytes, query: Query) -> tuple[int, Any]:
        out = [
            "# HELP toxiproxy_proxy_received_bytes_total Bytes received from the source of each direction.",
            "# TYPE toxiproxy_proxy_received_bytes_total counter",
        ]
        for proxy in self.collection.proxies.values():
            for direction in ("upstream", "downstream"):
                labels = (f'direction="{direction}",listener="{proxy.listen}",'
                          f'proxy="{proxy.name}",upstream="{proxy.upstream}"')
                out.append(f"toxiproxy_proxy_received_bytes_total{{{labels}}} "
                           f"{proxy.bytes_total(direction)}")
        out += [
            "# HELP faultline_proxy_connections_total Client connections accepted.",
            "# TYPE faultline_proxy_connections_total counter",
        ]
        out += [f'faultline_proxy_connections_total{{proxy="{p.name}"}} {p.connections_total}'
                for p in self.collection.proxies.values()]
        out += [
            "# HELP faultline_proxy_connections Live client connections.",
            "# TYPE faultline_proxy_connections gauge",
        ]
        out += [f'faultline_proxy_connections{{proxy="{p.name}"}} {len(p.connections)}'
                for p in self.collection.proxies.values()]
        text = "\n".join(out) + "\n"
        return 200, _Response(200, text.encode(), "text/plain; version=0.0.4; charset=utf-8")

    async def _events(self, *, body: bytes, query: Query) -> tuple[int, Any]:
        try:
            since = int(query.get("since", ["0"])[0])
        except ValueError:
            raise bad_request("since must be an integer") from None
        events, next_seq = self.events.since(since)
        return 200, {"events": events, "next": next_seq}


def _json(body: bytes) -> Any:
    if not body.strip():
        raise bad_request("EOF")
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad_request(str(exc)) from None


def _error_response(exc: APIError) -> _Response:
    return _Response(exc.status, json.dumps(exc.to_json()).encode() + b"\n", "application/json")


def _encode(response: _Response, keep_alive: bool) -> bytes:
    reason = _REASONS.get(response.status, "Unknown")
    lines = [f"HTTP/1.1 {response.status} {reason}"]
    if response.content_type:
        lines.append(f"Content-Type: {response.content_type}")
    if response.status != 204:
        lines.append(f"Content-Length: {len(response.body)}")
    lines.append("Connection: keep-alive" if keep_alive else "Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + response.body


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    body = bytearray()
    while True:
        size_line = await reader.readuntil(b"\r\n")
        size = int(size_line.split(b";")[0].strip() or b"0", 16)
        if size == 0:
            await reader.readuntil(b"\r\n")
            return bytes(body)
        if len(body) + size > MAX_BODY:
            raise bad_request("request body too large")
        body += await reader.readexactly(size)
        await reader.readexactly(2)
