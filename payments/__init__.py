"""The payment stack under test: api, risk, relay and worker services over a PostgreSQL
double-entry ledger with a transactional outbox, a Redis Streams event bus and a
hash-chained audit log (see payments/README.md).

Each service runs as ``python -m payments.<api|risk|relay|worker|migrate|seed>``. The
drill engine reaches it only through its system profile, ``payments.drill.PROFILE``
(docs/contracts.md §3-§4).
"""

__all__: list[str] = []
