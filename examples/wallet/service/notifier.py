"""``python -m wallet.service.notifier``: send the ``payment.completed`` webhooks.

The webhooks are rows of ``wallet_webhook``, written in each payment's own transaction.
The notifier claims a batch of due ones with a short lease (``FOR UPDATE SKIP LOCKED``,
committed at once: no transaction stays open across an HTTP call), POSTs each to the
client's endpoint (``WALLET_WEBHOOK_URL``), signed with HMAC-SHA256 of the body
(``Wallet-Signature: sha256=<hex>``, key ``WALLET_WEBHOOK_SECRET``), and marks it
delivered on a 2xx, or due again after a backoff. A 2xx whose mark is lost, or a reply
lost on the way back, makes the webhook go out again when its lease ends: delivery is
at least once, and receivers deduplicate by ``event_id``.

``GET /healthz`` on ``WALLET_PORT`` answers while the loop runs.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import signal
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["Claimed", "deliver_due", "main", "sign"]

log = logging.getLogger("wallet.notifier")

#: webhooks claimed per round trip, and how long a claim keeps others off them
BATCH = 10
LEASE_SECONDS = 5
#: seconds to wait after a failed delivery: 0.1, 0.2, 0.4, ... at most 1
BACKOFF_FIRST, BACKOFF_MAX = 0.1, 1.0
#: seconds before an unanswered webhook POST counts as failed
SEND_TIMEOUT = 2.0
IDLE_SLEEP = 0.1


@dataclass(frozen=True, slots=True)
class Claimed:
    """One webhook claimed for sending."""

    id: int
    event_id: str
    payload: Any
    attempts: int


def sign(secret: str, body: bytes) -> str:
    """The ``Wallet-Signature`` header of ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


_CLAIM = """
UPDATE wallet_webhook SET lease_until = now() + make_interval(secs => %s),
                          attempts = attempts + 1{mark}
WHERE id IN (SELECT id FROM wallet_webhook
             WHERE delivered_at IS NULL AND next_attempt_at <= now()
               AND (lease_until IS NULL OR lease_until < now())
             ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED)
RETURNING id, event_id::text, payload, attempts
"""


def _claim(marked_before_send: bool) -> list[Claimed]:
    from django.db import connection, transaction

    # with the bug, claiming *is* marking: a send that fails is never tried again
    sql = _CLAIM.format(mark=", delivered_at = now()" if marked_before_send else "")
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(sql, [LEASE_SECONDS, BATCH])
        rows = cur.fetchall()
    return sorted((Claimed(r[0], r[1], r[2] if not isinstance(r[2], str) else json.loads(r[2]),
                           r[3]) for r in rows), key=lambda c: c.id)


def _settle(hook: Claimed, delivered: bool) -> None:
    from django.db import connection

    with connection.cursor() as cur:
        if delivered:
            cur.execute("UPDATE wallet_webhook SET delivered_at = now(), lease_until = NULL "
                        "WHERE id = %s", [hook.id])
        else:
            backoff = min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** max(0, hook.attempts - 1))
            cur.execute("UPDATE wallet_webhook SET lease_until = NULL, next_attempt_at = "
                        "now() + make_interval(secs => %s) WHERE id = %s", [backoff, hook.id])


def http_sender(url: str, secret: str) -> Callable[[Claimed], bool]:
    """POST a webhook; True on a 2xx answer."""
    def send(hook: Claimed) -> bool:
        body = json.dumps(hook.payload, sort_keys=True, separators=(",", ":")).encode()
        request = urllib.request.Request(url, data=body, method="POST", headers={
            "Content-Type": "application/json", "Wallet-Signature": sign(secret, body),
            "Wallet-Event-Id": hook.event_id})
        try:
            with urllib.request.urlopen(request, timeout=SEND_TIMEOUT) as response:
                return 200 <= response.status < 300
        except urllib.error.HTTPError as exc:
            log.info("webhook %s refused: HTTP %s", hook.event_id, exc.code)
        except (OSError, ValueError) as exc:  # refused, reset, timed out, garbled reply
            log.info("webhook %s not delivered: %s", hook.event_id, exc)
        return False
    return send


def deliver_due(send: Callable[[Claimed], bool], marked_before_send: bool = False) -> int:
    """One round: claim due webhooks, send each, record the outcome. Returns how many
    were claimed (0: nothing due)."""
    claimed = _claim(marked_before_send)
    for hook in claimed:
        delivered = send(hook)
        if not marked_before_send:
            _settle(hook, delivered)
    return len(claimed)


class _Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        ok = self.path == "/healthz"
        self.send_response(200 if ok else 404)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"status": "ok"}' if ok else b"{}")

    def log_message(self, format: str, *args: Any) -> None:
        pass


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "wallet.service.settings")
    os.environ.setdefault("WALLET_APP_NAME", "wallet-notifier")
    import django
    from django.conf import settings
    from django.db import DatabaseError, connection

    django.setup()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s notifier %(message)s")
    send = http_sender(os.environ["WALLET_WEBHOOK_URL"], os.environ["WALLET_WEBHOOK_SECRET"])
    marked = "webhook_marked_before_send" in settings.WALLET_BUGS
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    health = ThreadingHTTPServer(("127.0.0.1", int(os.environ.get("WALLET_PORT", "8001"))),
                                 _Health)
    threading.Thread(target=health.serve_forever, daemon=True).start()
    while not stop.is_set():
        try:
            busy = deliver_due(send, marked)
        except DatabaseError as exc:  # the database hop is faulty: reconnect next round
            log.warning("database error: %s", exc)
            connection.close()
            busy = 0
        if not busy:
            stop.wait(IDLE_SLEEP)
    health.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
