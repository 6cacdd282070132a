"""Reading HTTP/1.1 requests for the API: strict, bounded in size and time.

A hostile or broken client must get a JSON error, never a traceback, and must never
hold a connection forever: the head is limited to 64 KiB (431), the body to 4 MiB
(413), a request must arrive within 15 s once started (408, as Toxiproxy's
``ReadTimeout``) and an idle keep-alive connection is closed after 60 s. Framing
that could be read two ways (``Content-Length`` with ``Transfer-Encoding``, several
different lengths, a chunk size that is not hexadecimal) is refused with a 400.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass

from faultline.proxy._errors import APIError

__all__ = ["MAX_BODY", "MAX_HEAD", "Request", "read_request"]

MAX_HEAD = 64 * 1024
MAX_BODY = 4 * 1024 * 1024
IDLE_TIMEOUT = 60.0
REQUEST_TIMEOUT = 15.0

_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_HEX = re.compile(rb"[0-9A-Fa-f]{1,8}")


@dataclass
class Request:
    """One parsed request."""

    method: str
    target: str
    headers: dict[str, str]
    body: bytes
    keep_alive: bool


async def read_request(reader: asyncio.StreamReader,
                       writer: asyncio.StreamWriter) -> Request | None:
    """The next request, or None when the client closed (or idled out) between requests.

    Raises :class:`APIError` for a request that cannot be served; the caller answers it
    and closes the connection.
    """
    try:
        first = await asyncio.wait_for(reader.readexactly(1), IDLE_TIMEOUT)
    except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
        return None
    try:
        return await asyncio.wait_for(_read_rest(first, reader, writer), REQUEST_TIMEOUT)
    except TimeoutError:
        raise APIError("request timeout: the request did not arrive in "
                       f"{REQUEST_TIMEOUT:.0f} s", 408) from None
    except asyncio.LimitOverrunError:
        raise APIError(f"request header fields too large (limit {MAX_HEAD} bytes)", 431) from None
    except asyncio.IncompleteReadError:
        raise APIError("the request ended before it was complete", 400) from None


async def _read_rest(first: bytes, reader: asyncio.StreamReader,
                     writer: asyncio.StreamWriter) -> Request:
    head = first + await reader.readuntil(b"\r\n\r\n")
    if len(head) > MAX_HEAD:
        raise asyncio.LimitOverrunError("head", 0)
    lines = head[:-4].decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not _TOKEN.fullmatch(parts[0]) or not parts[1].startswith("/"):
        raise APIError("malformed request line (expected: METHOD /path HTTP/1.1)", 400)
    method, target, version = parts
    if version not in ("HTTP/1.1", "HTTP/1.0"):
        raise APIError(f"HTTP version not supported: {version[:20]!r}", 505)
    headers: dict[str, str] = {}
    lengths: set[str] = set()
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not _TOKEN.fullmatch(name):
            raise APIError(f"malformed header line {line[:40]!r}", 400)
        key = name.lower()
        value = value.strip(" \t")
        if key == "content-length":
            lengths.add(value)
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    keep_alive = version == "HTTP/1.1"
    connection = headers.get("connection", "").lower()
    if connection == "close":
        keep_alive = False
    elif connection == "keep-alive":
        keep_alive = True
    encoding = headers.get("transfer-encoding", "").lower()
    if encoding and lengths:
        raise APIError("both Content-Length and Transfer-Encoding: refused (ambiguous framing)",
                       400)
    if encoding and encoding != "chunked":
        raise APIError(f"unsupported Transfer-Encoding {encoding[:40]!r} (only chunked)", 400)
    if len(lengths) > 1:
        raise APIError("several different Content-Length headers", 400)
    length = 0
    if lengths:
        text = lengths.pop()
        if not text.isdigit() or len(text) > 12:
            raise APIError(f"bad Content-Length {text[:20]!r}", 400)
        length = int(text)
        if length > MAX_BODY:
            raise APIError(f"request body too large (limit {MAX_BODY} bytes)", 413)
    if (encoding or length) and headers.get("expect", "").lower() == "100-continue":
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    if encoding:
        body = await _read_chunked(reader)
    else:
        body = await reader.readexactly(length) if length else b""
    return Request(method.upper(), target, headers, body, keep_alive)


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    body = bytearray()
    while True:
        size_line = await reader.readuntil(b"\r\n")
        size_text = size_line[:-2].split(b";", 1)[0].strip()
        if not _HEX.fullmatch(size_text):
            raise APIError(f"bad chunked encoding: chunk size {size_text[:20]!r} is not "
                           "hexadecimal", 400)
        size = int(size_text, 16)
        if size == 0:
            while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailer fields, ignored
                pass
            return bytes(body)
        if len(body) + size > MAX_BODY:
            raise APIError(f"request body too large (limit {MAX_BODY} bytes)", 413)
        body += await reader.readexactly(size)
        if await reader.readexactly(2) != b"\r\n":
            raise APIError("bad chunked encoding: a chunk is not followed by CRLF", 400)
