"""Toxiproxy's HTTP API on a small hand-written asyncio HTTP/1.1 server.

Routes, JSON shapes, status codes and error messages follow Toxiproxy 2.x's ``api.go``.
Faultline's additions are new routes or new query parameters only, so every request a
Toxiproxy client sends gets the answer Toxiproxy would give:

- ``GET /events?since=N``: the structured event log;
- ``GET /proxies/{proxy}/toxics/{toxic}/effect``: a toxic's ``seen``/``effect`` counters;
- ``DELETE /proxies/{proxy}/toxics/{toxic}?effect=1``: 200 with the final counters
  (without the query: Toxiproxy's 204);
- ``GET /proxies/{proxy}/effect``: what the last disable of the proxy cut;
- ``GET/POST /seed``: the seed every decision derives from.

With an API token (``--api-token-file`` or ``FAULTLINE_PROXY_TOKEN``), every request
needs ``Authorization: Bearer <token>``; tokens are compared in constant time.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import re
import sys
import traceback
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from faultline.proxy._collection import ProxyCollection
from faultline.proxy._errors import APIError, bad_request
from faultline.proxy._events import EventLog
from faultline.proxy._http import Request, read_request
from faultline.proxy._validate import parse_json

__all__ = ["TOXIPROXY_VERSION", "APIServer"]

TOXIPROXY_VERSION = "2.12.0"

Query = dict[str, list[str]]
Handler = Callable[..., Awaitable[tuple[int, Any]]]
_NO_BODY = object()  # a 204 / empty response


class _Response:
    __slots__ = ("body", "content_type", "headers", "status")

    def __init__(self, status: int, body: bytes, content_type: str,
                 headers: tuple[str, ...] = ()) -> None:
        self.status = status
        self.body = body
        self.content_type = content_type
        self.headers = headers


_REASONS = {200: "OK", 201: "Created", 204: "No Content", 400: "Bad Request",
            401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
            405: "Method Not Allowed", 408: "Request Timeout", 409: "Conflict",
            413: "Payload Too Large", 431: "Request Header Fields Too Large",
            500: "Internal Server Error", 505: "HTTP Version Not Supported"}


def _truthy(query: Query, key: str) -> bool:
    return query.get(key, [""])[-1].lower() in ("1", "true", "yes")


class APIServer:
    """The HTTP API over a :class:`ProxyCollection`."""

    def __init__(self, collection: ProxyCollection, events: EventLog,
                 token: str | None = None) -> None:
        self.collection = collection
        self.events = events
        self._token = token.encode() if token else None
        self._routes: list[tuple[re.Pattern[str], dict[str, Handler]]] = [
            (re.compile(r"^/reset$"), {"POST": self._reset}),
            (re.compile(r"^/proxies$"), {"GET": self._proxy_index, "POST": self._proxy_create}),
            (re.compile(r"^/populate$"), {"POST": self._populate}),
            (re.compile(r"^/proxies/([^/]+)$"), {
                "GET": self._proxy_show, "POST": self._proxy_update,
                "PATCH": self._proxy_update, "DELETE": self._proxy_delete}),
            (re.compile(r"^/proxies/([^/]+)/effect$"), {"GET": self._proxy_effect}),
            (re.compile(r"^/proxies/([^/]+)/toxics$"), {
                "GET": self._toxic_index, "POST": self._toxic_create}),
            (re.compile(r"^/proxies/([^/]+)/toxics/([^/]+)$"), {
                "GET": self._toxic_show, "POST": self._toxic_update,
                "PATCH": self._toxic_update, "DELETE": self._toxic_delete}),
            (re.compile(r"^/proxies/([^/]+)/toxics/([^/]+)/effect$"), {
                "GET": self._toxic_effect}),
            (re.compile(r"^/version$"), {"GET": self._version}),
            (re.compile(r"^/metrics$"), {"GET": self._metrics}),
            (re.compile(r"^/events$"), {"GET": self._events}),
            (re.compile(r"^/seed$"), {"GET": self._seed_show, "POST": self._seed_set}),
        ]

    # -- HTTP plumbing ---------------------------------------------------------------
    async def handle_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve requests on one keep-alive connection."""
        try:
            while True:
                try:
                    request = await read_request(reader, writer)
                except APIError as exc:  # unreadable: answer, then hang up
                    writer.write(_encode(_error_response(exc), False))
                    await writer.drain()
                    return
                if request is None:
                    return
                response = await self.answer(request)
                writer.write(_encode(response, request.keep_alive))
                await writer.drain()
                if not request.keep_alive:
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def answer(self, request: Request) -> _Response:
        """Check who asks, then route."""
        if request.headers.get("user-agent", "").startswith("Mozilla/"):
            # as Toxiproxy: a browser must not drive the API (CSRF from a web page)
            return _Response(403, b"User agent not allowed\n", "text/plain; charset=utf-8")
        if self._token is not None:
            given = request.headers.get("authorization", "").encode("latin-1")
            scheme, _, credential = given.partition(b" ")
            ok = scheme.lower() == b"bearer" and hmac.compare_digest(credential.strip(),
                                                                      self._token)
            if not ok:
                return _error_response(APIError(
                    "unauthorized: this server needs 'Authorization: Bearer <token>' "
                    "(FAULTLINE_PROXY_TOKEN)", 401), ('WWW-Authenticate: Bearer realm="faultline"',))
        return await self.dispatch(request.method, request.target, request.body)

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
            args = [unquote(g, errors="replace") for g in match.groups()]
            try:
                status, payload = await handler(*args, body=body, query=parse_qs(parts.query))
            except APIError as exc:
                return _error_response(exc)
            except Exception:  # a bug of ours: say so, log it, never leak internals
                print(f"faultline proxy: internal error on {method} {path}:\n"
                      f"{traceback.format_exc()}", file=sys.stderr, flush=True)
                return _error_response(APIError("internal server error (see the server's "
                                                "log)", 500))
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
        proxy = await self.collection.create(parse_json(body))
        return 201, proxy.to_json()

    async def _populate(self, *, body: bytes, query: Query) -> tuple[int, Any]:
        try:
            proxies = await self.collection.populate(parse_json(body))
        except APIError as exc:
            return exc.status, {**exc.to_json(), "proxies": None}
        return 201, {"proxies": [p.to_json() for p in proxies]}

    async def _proxy_show(self, name: str, *, body: bytes, query: Query) -> tuple[int, Any]:
        return 200, self.collection.get(name).to_json()

    async def _proxy_update(self, name: str, *, body: bytes, query: Query) -> tuple[int, Any]:
        self.collection.get(name)  # 404 before 400, as Toxiproxy
        proxy = await self.collection.update(name, parse_json(body))
        return 200, proxy.to_json()

    async def _proxy_delete(self, name: str, *, body: bytes, query: Query) -> tuple[int, Any]:
        self.collection.delete(name)
        return 204, _NO_BODY

    async def _proxy_effect(self, name: str, *, body: bytes, query: Query) -> tuple[int, Any]:
        return 200, self.collection.proxy_effect(name)

    async def _toxic_index(self, name: str, *, body: bytes, query: Query) -> tuple[int, Any]:
        return 200, [t.to_json() for t in self.collection.get(name).toxic_list()]

    async def _toxic_create(self, name: str, *, body: bytes, query: Query) -> tuple[int, Any]:
        self.collection.get(name)
        return 200, self.collection.add_toxic(name, parse_json(body)).to_json()

    async def _toxic_show(self, name: str, toxic: str, *, body: bytes, query: Query) -> tuple[int, Any]:
        return 200, self.collection.get_toxic(name, toxic).to_json()

    async def _toxic_update(self, name: str, toxic: str, *, body: bytes, query: Query) -> tuple[int, Any]:
        self.collection.get_toxic(name, toxic)
        return 200, self.collection.update_toxic(name, toxic, parse_json(body)).to_json()

    async def _toxic_delete(self, name: str, toxic: str, *, body: bytes, query: Query) -> tuple[int, Any]:
        report = self.collection.remove_toxic(name, toxic)
        if _truthy(query, "effect"):
            return 200, report
        return 204, _NO_BODY

    async def _toxic_effect(self, name: str, toxic: str, *, body: bytes, query: Query) -> tuple[int, Any]:
        return 200, self.collection.toxic_effect(name, toxic)

    async def _seed_show(self, *, body: bytes, query: Query) -> tuple[int, Any]:
        return 200, self.collection.seeding.to_json()

    async def _seed_set(self, *, body: bytes, query: Query) -> tuple[int, Any]:
        return 200, self.collection.set_seed(parse_json(body))

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
                labels = (f'direction="{direction}",listener="{_label(proxy.listen)}",'
                          f'proxy="{_label(proxy.name)}",upstream="{_label(proxy.upstream)}"')
                out.append(f"toxiproxy_proxy_received_bytes_total{{{labels}}} "
                           f"{proxy.bytes_total(direction)}")
        out += [
            "# HELP faultline_proxy_connections_total Client connections accepted.",
            "# TYPE faultline_proxy_connections_total counter",
        ]
        out += [f'faultline_proxy_connections_total{{proxy="{_label(p.name)}"}} '
                f"{p.connections_total}" for p in self.collection.proxies.values()]
        out += [
            "# HELP faultline_proxy_connections Live client connections.",
            "# TYPE faultline_proxy_connections gauge",
        ]
        out += [f'faultline_proxy_connections{{proxy="{_label(p.name)}"}} {len(p.connections)}'
                for p in self.collection.proxies.values()]
        text = "\n".join(out) + "\n"
        return 200, _Response(200, text.encode(), "text/plain; version=0.0.4; charset=utf-8")

    async def _events(self, *, body: bytes, query: Query) -> tuple[int, Any]:
        raw = query.get("since", ["0"])[0]
        if not raw.lstrip("-").isdigit() or len(raw) > 19:
            raise bad_request("since must be an integer")
        events, next_seq = self.events.since(int(raw))
        return 200, {"events": events, "next": next_seq}


def _label(value: str) -> str:
    """A Prometheus label value, escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _error_response(exc: APIError, headers: tuple[str, ...] = ()) -> _Response:
    return _Response(exc.status, json.dumps(exc.to_json()).encode() + b"\n", "application/json",
                     headers)


def _encode(response: _Response, keep_alive: bool) -> bytes:
    reason = _REASONS.get(response.status, "Unknown")
    lines = [f"HTTP/1.1 {response.status} {reason}"]
    if response.content_type:
        lines.append(f"Content-Type: {response.content_type}")
    if response.status != 204:
        lines.append(f"Content-Length: {len(response.body)}")
    lines.extend(response.headers)
    lines.append("Connection: keep-alive" if keep_alive else "Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + response.body
