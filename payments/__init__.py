"""The payment stack under test: api, risk, relay and worker services over a PostgreSQL
double-entry ledger with a transactional outbox, a Redis Streams event bus and a
hash-chained audit log (see payments/README.md).

Each service runs as ``python -m payments.<api|risk|relay|worker|migrate|seed>``.
Library entry points used by the rest of Faultline: ``payments.snapshot.take_snapshot``
and ``payments.audit.chain_hash`` (contracts §4, §5).
"""

__all__: list[str] = []
