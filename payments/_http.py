"""A small keep-alive HTTP/1.1 client for the api -> risk hop.

Why not httpx: on the transfer hot path httpx costs more CPU per call than the whole
risk service; this client is a connection pool and ~one parse per response. It speaks
only what the hop needs (POST JSON, Content-Length bodies). Every failure surfaces as
``ConnectionError`` (an ``OSError``), so the caller's Retry policy can match it.
"""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlsplit

__all__ = ["HttpPool"]

_Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class HttpPool:
    """Keep-alive connections to one ``http://host:port`` origin."""

    def __init__(self, base_url: str, *, max_idle: int = 64) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"need an http://host:port URL, got {base_url!r}")
        self.host, self.port = parts.hostname, parts.port or 80
        self.max_idle = max_idle
        self._idle: list[_Conn] = []

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        """POST ``body`` as JSON; return (status, response body)."""
        reused = bool(self._idle)
        try:
            return await self._once(path, body)
        except ConnectionError:
            if not reused:
                raise
            # A pooled connection the server had already closed: one fresh attempt.
            return await self._once(path, body)

    async def _once(self, path: str, body: bytes) -> tuple[int, bytes]:
        if self._idle:
            conn = self._idle.pop()
        else:
            try:
                conn = await asyncio.open_connection(self.host, self.port)
            except OSError as exc:
                raise ConnectionError(f"connect to {self.host}:{self.port}: {exc}") from exc
        keep = False
        try:
            status, data, keep = await self._exchange(conn, path, body)
            return status, data
        except (OSError, EOFError, asyncio.LimitOverrunError, ValueError) as exc:
            raise ConnectionError(f"risk connection failed: {type(exc).__name__}") from exc
        finally:
            # Also on cancellation (a Timeout policy): a half-read connection is garbage.
            if keep and len(self._idle) < self.max_idle:
                self._idle.append(conn)
            else:
                conn[1].close()

    async def _exchange(self, conn: _Conn, path: str, body: bytes) -> tuple[int, bytes, bool]:
        reader, writer = conn
        writer.write(
            f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body)
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length, keep = None, True
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection" and value.strip().lower() == b"close":
                keep = False
            elif name == b"transfer-encoding":
                raise ValueError("chunked responses are not supported")
        if length is None:
            data, keep = await reader.read(), False
        else:
            data = await reader.readexactly(length)
        return status, data, keep

    async def aclose(self) -> None:
        """Close idle connections."""
        while self._idle:
            _, writer = self._idle.pop()
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
