"""Faultline's toxics beyond Toxiproxy: ``lost_ack``, ``connect_delay``, ``http_error``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from faultline.proxy._errors import bad_request
from faultline.proxy._toxic import Chain, ToxicKind, ToxicStub

if TYPE_CHECKING:
    from faultline.proxy._link import Link

__all__ = ["EXTRA_KINDS"]


class _LostAck(ToxicKind):
    """Let the request through, then reset the client before any reply byte reaches it."""

    name = "lost_ack"
    attributes = {"after_bytes": (int, 0)}

    async def on_data(
        self, stub: ToxicStub, link: Link, chain: Chain, pos: int, data: bytes, ts: float
    ) -> None:
        if stub.removed:
            await link.emit(chain, pos + 1, data, ts)
            return
        allowed = int(stub.toxic.attributes["after_bytes"]) - stub.bytes
        if allowed >= len(data):
            stub.bytes += len(data)
            await link.emit(chain, pos + 1, data, ts)
            return
        if allowed > 0:
            stub.bytes += allowed
            await link.emit(chain, pos + 1, data[:allowed], ts)
        stub.fired("reply dropped, client reset")
        link.conn.reset()


class _ConnectDelay(ToxicKind):
    """Delay the upstream connect (the handshake), once per new connection."""

    name = "connect_delay"
    attributes = {"delay": (int, 0)}
    handles_data = False


class _HTTPState:
    __slots__ = ("body_left", "head", "passthrough")

    def __init__(self) -> None:
        self.head = b""
        self.body_left = 0
        self.passthrough = False


_REASONS = {
    400: "Bad Request", 408: "Request Timeout", 429: "Too Many Requests",
    500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
    504: "Gateway Timeout",
}


class _HTTPError(ToxicKind):
    """Answer HTTP requests with ``status`` (probability = toxicity) instead of forwarding.

    It watches requests from the client whatever its ``stream``, and rolls toxicity per
    request. An injected response closes the connection (``Connection: close``).
    """

    name = "http_error"
    attributes = {"status": (int, 503), "retry_after": (int, 0), "body": (str, "")}
    rolls_per_connection = False

    def direction(self, stream: str) -> str:
        return "upstream"

    def validate(self, attrs: dict[str, Any]) -> None:
        if not 100 <= attrs["status"] <= 599:
            raise bad_request("http_error: status must be between 100 and 599")
        if attrs["retry_after"] < 0:
            raise bad_request("http_error: retry_after must be >= 0")

    def response(self, stub: ToxicStub) -> bytes:
        """The injected response, as bytes on the wire."""
        attrs = stub.toxic.attributes
        status = int(attrs["status"])
        body = (str(attrs["body"]) or
                f'{{"error": "injected by faultline http_error", "status": {status}}}')
        raw = body.encode()
        lines = [
            f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}",
            "Content-Type: application/json",
            f"Content-Length: {len(raw)}",
            "Connection: close",
        ]
        if int(attrs["retry_after"]) > 0:
            lines.append(f"Retry-After: {int(attrs['retry_after'])}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + raw

    async def on_data(
        self, stub: ToxicStub, link: Link, chain: Chain, pos: int, data: bytes, ts: float
    ) -> None:
        state: _HTTPState | None = stub.http
        if state is None:
            state = stub.http = _HTTPState()
        while data:
            if stub.removed or state.passthrough:
                await link.emit(chain, pos + 1, data, ts)
                return
            if state.body_left > 0:
                n = min(state.body_left, len(data))
                state.body_left -= n
                await link.emit(chain, pos + 1, data[:n], ts)
                data = data[n:]
                continue
            buffered = state.head + data
            end = buffered.find(b"\r\n\r\n")
            if end < 0:
                state.head = buffered
                return
            head, data = buffered[: end + 4], buffered[end + 4 :]
            state.head = b""
            if stub.roll():
                stub.fired(f"answered {stub.toxic.attributes['status']}")
                link.conn.answer_client(self.response(stub))
                return
            state.body_left, state.passthrough = _body_length(head)
            await link.emit(chain, pos + 1, head, ts)


def _body_length(head: bytes) -> tuple[int, bool]:
    """(Content-Length, passthrough) of a request head; chunked bodies pass through."""
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        key = name.strip().lower()
        if key == b"transfer-encoding" and b"chunked" in value.lower():
            return 0, True
        if key == b"content-length":
            try:
                length = int(value.strip())
            except ValueError:
                return 0, True
    return length, False


EXTRA_KINDS: tuple[ToxicKind, ...] = (_LostAck(), _ConnectDelay(), _HTTPError())
