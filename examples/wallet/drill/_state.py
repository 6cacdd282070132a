"""The wallet's final state in Faultline's normalised tables, and whether it has settled.

Read with plain SQL over the wallet's and hordak's tables (psycopg, no Django, nothing
of ``wallet.service``): the oracle must not share the code it judges. One
repeatable-read transaction, so every table is the same instant.

======================  =====================================================================
normalised table        from
======================  =====================================================================
``accounts``            ``wallet_wallet``: the balance row (minor units, credit-normal);
                        the funding wallet is the ``issuance`` account (money from outside)
``transfers``           ``wallet_payment`` that moved money (``completed``; a declined
                        payment moved none and is kept out, see below)
``entries``             ``hordak_leg``: ``credit - debit`` in minor units, joined to the
                        payment of its hordak transaction (a leg of no payment is orphaned)
``idempotency``         ``wallet_idempotencyrecord``: the stored answer of each key
``outbox``              ``wallet_webhook``: one ``payment.completed`` event per payment,
                        ``published_at`` = when the receiver acknowledged it
``stream``              the merchant's ``merchant_delivery``: every delivery it received
``processed_events``    the merchant's ``merchant_processed``: events it applied
``projections``         the merchant's ``merchant_balance``: its view of each wallet
``external_inflow``     what the seed put in (the workload data), not what the books say
======================  =====================================================================

The merchant's tables live in its own database: a second transaction, read after the
wallet's (the drill takes the snapshot once the stack has settled, so nothing moves).

Declined payments are kept out of ``transfers``: ``acknowledged_exactly_once`` counts
every row of that table with a key as "in the ledger", so a decline stored under the
key of a refused (``fail``) operation would read as "failed but applied".
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

import psycopg
from psycopg.rows import dict_row

from faultline.stack import StackInfo
from faultline.system import StateSink

__all__ = ["MERCHANT_QUERIES", "QUERIES", "settle_status", "snapshot"]

#: table -> the query that reads it (ordered, so two snapshots of one state are equal)
QUERIES: dict[str, str] = {
    "accounts": """
        SELECT w.id::text AS id, w.client_id::text AS merchant_id, w.currency,
               w.balance_minor AS balance, NOT w.allow_negative AS non_negative,
               CASE w.kind WHEN 'funding' THEN 'issuance' ELSE 'customer' END AS kind
        FROM wallet_wallet w ORDER BY w.id""",
    "transfers": """
        SELECT p.id::text AS id, p.client_id::text AS merchant_id, p.idempotency_key,
               p.payer_id::text AS from_account, p.payee_id::text AS to_account,
               (p.amount * 100)::bigint AS amount, p.amount_currency AS currency,
               p.status, p.created AS created_at
        FROM wallet_payment p WHERE p.status <> 'declined' ORDER BY p.created, p.id""",
    # legs of one hordak transaction are adjacent (the checkers sum runs of them)
    "entries": """
        SELECT l.id::text AS id,
               coalesce(p.id::text, 'hordak-transaction-' || l.transaction_id) AS transfer_id,
               coalesce(w.id::text, 'hordak-account-' || l.account_id) AS account_id,
               ((coalesce(l.credit, 0) - coalesce(l.debit, 0)) * 100)::bigint AS amount,
               l.currency
        FROM hordak_leg l
        LEFT JOIN wallet_wallet w ON w.account_id = l.account_id
        LEFT JOIN wallet_payment p ON p.transaction_id = l.transaction_id
        ORDER BY l.transaction_id, l.id""",
    "idempotency": """
        SELECT i.client_id::text AS merchant_id, i.key, i.request_hash,
               i.response_status AS status_code, i.response_body,
               CASE WHEN i.response_status IS NULL THEN 'in_flight' ELSE 'done' END AS state
        FROM wallet_idempotencyrecord i ORDER BY i.client_id, i.key""",
    "outbox": """
        SELECT h.id::text AS id, h.event_id::text AS event_id,
               h.payment_id::text AS transfer_id, h.delivered_at AS published_at
        FROM wallet_webhook h ORDER BY h.id""",
}

#: the merchant's tables (its own database)
MERCHANT_QUERIES: dict[str, str] = {
    "stream": """
        SELECT d.id::text AS stream_id, d.event_id::text AS event_id,
               d.payment_id::text AS transfer_id
        FROM merchant_delivery d ORDER BY d.id""",
    "processed_events": """
        SELECT p.event_id::text AS event_id, 'merchant' AS consumer
        FROM merchant_processed p ORDER BY p.event_id""",
    "projections": """
        SELECT b.wallet_id::text AS account_id, b.balance_minor AS balance
        FROM merchant_balance b ORDER BY b.wallet_id""",
}

#: rows fetched per round trip
CHUNK = 5000


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else str(value)
    return value


def _rows(conn: psycopg.Connection[Any], table: str, sql: str) -> Iterator[dict[str, Any]]:
    with conn.cursor(name=f"snapshot_{table}", row_factory=dict_row) as cur:
        cur.itersize = CHUNK
        cur.execute(sql)
        for row in cur:
            yield {k: _plain(v) for k, v in row.items()}


def _inflow(stack: StackInfo, conn: psycopg.Connection[Any]) -> dict[str, int]:
    """Money that entered from outside: what the seed says it funded (the drill's own
    record); without workload data, what the funding wallet gave out."""
    funded = stack.workload_data.get("funded_minor")
    if isinstance(funded, int):
        return {str(stack.workload_data.get("currency", "EUR")): funded}
    rows = conn.execute("SELECT currency, -sum(balance_minor) FROM wallet_wallet "
                        "WHERE kind = 'funding' GROUP BY currency").fetchall()
    return {cur: int(total) for cur, total in rows}


def _read(url: str, queries: dict[str, str], sink: StateSink,
          also: Any = None) -> None:
    with psycopg.connect(url, connect_timeout=10) as conn:
        conn.read_only = True
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        with conn.transaction():
            for table, sql in queries.items():
                sink.table(table, _rows(conn, table, sql))
            if also is not None:
                also(conn)


def snapshot(stack: StackInfo, sink: StateSink) -> None:
    """Write the final state: the wallet's ledger, idempotency records and webhooks,
    the merchant's deliveries, applied events and balances, the money from outside."""
    _read(stack.endpoints["database_url"], QUERIES, sink,
          also=lambda conn: sink.meta("external_inflow", _inflow(stack, conn)))
    _read(stack.endpoints["merchant_database_url"], MERCHANT_QUERIES, sink)


_SETTLE = """
SELECT (SELECT count(*) FROM wallet_webhook WHERE delivered_at IS NULL) AS undelivered,
       (SELECT count(*) FROM pg_stat_activity
        WHERE datname = current_database() AND backend_type = 'client backend'
          AND application_name = 'wallet-api' AND state <> 'idle'
          AND pid <> pg_backend_pid()) AS busy
"""


def settle_status(stack: StackInfo) -> list[str]:
    """Why the wallet has not settled yet: webhooks not yet acknowledged by the
    merchant, or API transactions still running in PostgreSQL (after a cut connection,
    the server ends an orphaned transaction only when it notices). [] = settled."""
    try:
        with psycopg.connect(stack.endpoints["database_url"], connect_timeout=5) as conn:
            undelivered, busy = conn.execute(_SETTLE).fetchone() or (0, 0)
    except psycopg.Error as exc:
        return [f"cannot read the state yet: {type(exc).__name__}: {exc}"]
    problems = []
    if undelivered:
        problems.append(f"{undelivered} webhook(s) not delivered yet")
    if busy:
        problems.append(f"{busy} wallet API database session(s) still working")
    return problems
