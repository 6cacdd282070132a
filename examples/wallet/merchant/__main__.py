"""The webhook receiver (see the package docstring).

=========================  ==============================================================
``MERCHANT_DATABASE_URL``  its own PostgreSQL database
``WALLET_WEBHOOK_SECRET``  the HMAC key the wallet signs webhooks with
``WALLET_PORT``            where it listens (127.0.0.1)
``WALLET_BUGS``            ``merchant_applies_twice`` switches its deliberate bug on
=========================  ==============================================================
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import signal
import sys
import threading
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import psycopg

from wallet.bugs import active as active_bugs

__all__ = ["SCHEMA", "apply_event", "main"]

log = logging.getLogger("wallet.merchant")

SCHEMA = """
CREATE TABLE IF NOT EXISTS merchant_delivery (
    id bigserial PRIMARY KEY, event_id uuid NOT NULL, payment_id uuid NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS merchant_processed (
    event_id uuid PRIMARY KEY, payment_id uuid NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS merchant_balance (
    wallet_id uuid PRIMARY KEY, balance_minor bigint NOT NULL);
"""

_UPSERT = ("INSERT INTO merchant_balance (wallet_id, balance_minor) VALUES (%s, %s) "
           "ON CONFLICT (wallet_id) DO UPDATE "
           "SET balance_minor = merchant_balance.balance_minor + EXCLUDED.balance_minor")
_local = threading.local()


def _connection() -> psycopg.Connection[Any]:
    conn: psycopg.Connection[Any] | None = getattr(_local, "conn", None)
    if conn is None or conn.closed:
        conn = psycopg.connect(os.environ["MERCHANT_DATABASE_URL"], connect_timeout=3,
                               autocommit=True,
                               application_name="merchant",
                               options="-c statement_timeout=5000")
        _local.conn = conn
    return conn


def apply_event(conn: psycopg.Connection[Any], event: dict[str, Any],
                applies_twice: bool = False) -> None:
    """Record the delivery, then apply the event once: both wallets' balances move."""
    payment = event["payment"]
    event_id, payment_id = event["event_id"], payment["id"]
    amount = int(Decimal(payment["amount"]) * 100)
    with conn.transaction():
        conn.execute("INSERT INTO merchant_delivery (event_id, payment_id) VALUES (%s, %s)",
                     [event_id, payment_id])
    with conn.transaction():
        first = conn.execute("INSERT INTO merchant_processed (event_id, payment_id) "
                             "VALUES (%s, %s) ON CONFLICT DO NOTHING RETURNING event_id",
                             [event_id, payment_id]).fetchone()
        if first is None and not applies_twice:
            return  # a redelivery: already applied
        # in wallet-id order: two deliveries never wait on each other crosswise
        for wallet, delta in sorted([(payment["payer"], -amount), (payment["payee"], amount)]):
            conn.execute(_UPSERT, [wallet, delta])


class _Receiver(BaseHTTPRequestHandler):
    secret = b""
    applies_twice = False
    protocol_version = "HTTP/1.1"

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path == "/healthz":
            self._answer(200, {"status": "ok"})
        elif self.path == "/readyz":
            try:
                _connection().execute("SELECT 1")
            except psycopg.Error:
                self._answer(503, {"status": "database unavailable"})
            else:
                self._answer(200, {"status": "ready"})
        else:
            self._answer(404, {"error": "not found"})

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path != "/webhooks":
            self._answer(404, {"error": "not found"})
            return
        expected = "sha256=" + hmac.new(self.secret, body, "sha256").hexdigest()
        if not hmac.compare_digest(expected, self.headers.get("Wallet-Signature", "")):
            self._answer(401, {"error": "bad signature"})
            return
        try:
            event = json.loads(body)
            apply_event(_connection(), event, self.applies_twice)
        except (ValueError, KeyError, TypeError):
            self._answer(400, {"error": "not a payment event"})
        except psycopg.Error as exc:
            log.warning("database error: %s", exc)
            conn = getattr(_local, "conn", None)
            if conn is not None:
                conn.close()
            self._answer(503, {"error": "try again"})
        else:
            self._answer(200, {"received": event["event_id"]})

    def log_message(self, format: str, *args: Any) -> None:
        pass


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s merchant %(message)s")
    if argv[1:] == ["migrate"]:
        with psycopg.connect(os.environ["MERCHANT_DATABASE_URL"], autocommit=True) as conn:
            conn.execute(SCHEMA)
        return 0
    _Receiver.secret = os.environ["WALLET_WEBHOOK_SECRET"].encode()
    _Receiver.applies_twice = "merchant_applies_twice" in active_bugs()
    server = ThreadingHTTPServer(("127.0.0.1", int(os.environ.get("WALLET_PORT", "8002"))),
                                 _Receiver)
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
