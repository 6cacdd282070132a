"""``http_error``: answer HTTP/1.x requests with an error instead of forwarding them.

It watches requests from the client whatever its ``stream`` and rolls toxicity per
request (an HTTP request is its own exchange, so ``scope`` changes nothing for it):
the n-th request it sees draws decision n in scope ``request``. An injected response
closes the connection (``Connection: close``); the upstream never sees that request.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from faultline.proxy._errors import APIError
from faultline.proxy._toxic import Chain, ToxicKind, ToxicStub
from faultline.proxy._validate import Attr

if TYPE_CHECKING:
    from faultline.proxy._link import Link

__all__ = ["HTTP_ERROR"]

_REASONS = {
    400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
    408: "Request Timeout", 409: "Conflict", 422: "Unprocessable Entity",
    429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway",
    503: "Service Unavailable", 504: "Gateway Timeout",
}
MAX_HEAD = 64 * 1024  # a request head longer than this is passed through unexamined


class _HTTPState:
    __slots__ = ("body_left", "head", "passthrough")

    def __init__(self) -> None:
        self.head = b""
        self.body_left = 0
        self.passthrough = False


class _HTTPError(ToxicKind):
    name = "http_error"
    attributes = {"status": Attr(int, 503, 400, 599), "retry_after": Attr(int, 0, 0, 86_400, "s"),
                  "body": Attr(str, "")}
    effects = ("answers_replaced",)
    rolls_per_connection = False

    def direction(self, stream: str) -> str:
        return "upstream"

    def validate(self, attrs: dict[str, object]) -> None:
        if len(str(attrs["body"])) > 65536:
            raise APIError("http_error: attribute body must be at most 65536 characters", 400)

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
                if len(buffered) > MAX_HEAD:  # not HTTP as we know it: stop looking
                    state.passthrough = True
                    state.head = b""
                    await link.emit(chain, pos + 1, buffered, ts)
                    return
                state.head = buffered
                return
            head, data = buffered[: end + 4], buffered[end + 4 :]
            state.head = b""
            stub.decision, hit = stub.toxic.decide("request")
            if hit:
                stub.toxic.counters.answers_replaced += 1
                stub.fire(f"answered {stub.toxic.attributes['status']}")
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
            text = value.strip()
            if not text.isdigit():
                return 0, True
            length = int(text)
    return length, False


HTTP_ERROR = _HTTPError()
