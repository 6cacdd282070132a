"""The downstream risk service: scores a transfer, with knobs to make it slow or strict.

``PAYMENTS_RISK_LATENCY_MS`` adds latency to every score; ``PAYMENTS_RISK_DECLINE_OVER``
declines amounts above it (0 = never). Raw ASGI: it is tiny and on the hot path.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, Counter, generate_latest

from payments._config import Settings, load_settings
from payments._serve import serve_asgi, setup_logging

__all__ = ["create_app", "main", "score"]

SCORES = Counter("payments_risk_scores_total", "Scores given", ["decision"])


def score(body: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """A deterministic toy score: larger amounts are riskier."""
    amount = int(body.get("amount", 0))
    risk = min(1.0, amount / 1_000_000)
    if settings.risk_decline_over and amount > settings.risk_decline_over:
        return {"decision": "decline", "score": risk, "reason": "amount_over_limit"}
    return {"decision": "approve", "score": risk}


def create_app(settings: Settings) -> Any:
    """The risk ASGI app."""
    delay = settings.risk_latency_ms / 1000.0

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                msg = await receive()
                if msg["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif msg["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        path, method = scope["path"], scope["method"]
        status = 404
        payload: dict[str, Any] = {"error": {"code": "not_found", "message": "no such route"}}
        if path == "/healthz":
            status, payload = 200, {"ok": True}
        elif path == "/metrics":
            data = generate_latest()
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", CONTENT_TYPE_LATEST.encode()),
                                    (b"content-length", str(len(data)).encode())]})
            await send({"type": "http.response.body", "body": data})
            return
        elif path == "/v1/score" and method == "POST":
            chunks = []
            more = True
            while more:
                msg = await receive()
                chunks.append(msg.get("body", b""))
                more = msg.get("more_body", False)
            try:
                body = orjson.loads(b"".join(chunks))
                if delay:
                    await asyncio.sleep(delay)
                status, payload = 200, score(body, settings)
                SCORES.labels(payload["decision"]).inc()
            except (orjson.JSONDecodeError, TypeError, ValueError, AttributeError):
                status, payload = 400, {"error": {"code": "invalid_json",
                                                  "message": "body must be a JSON object"}}
        data = orjson.dumps(payload)
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(data)).encode())]})
        await send({"type": "http.response.body", "body": data})

    return app


def main() -> int:
    """Entry point of ``python -m payments.risk``."""
    settings = load_settings()
    setup_logging("risk")
    serve_asgi(create_app(settings), settings.host, settings.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
