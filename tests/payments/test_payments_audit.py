"""The audit log is append-only in the database and its hash chain exposes tampering."""

from __future__ import annotations

import asyncpg
import pytest
from payments_stack import Stack, new_stack, run_async

from faultline.stack._embedded import EmbeddedPostgres
from payments import audit

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def stack(postgres_server: EmbeddedPostgres) -> Stack:
    s = new_stack(postgres_server, "redis://127.0.0.1:1/0", "audit")
    s.run_seed("--merchants", "1", "--accounts", "4", "--balance", "500")
    return s


async def _rows(url: str) -> list[dict[str, object]]:
    conn = await asyncpg.connect(url)
    try:
        return [dict(r) for r in await conn.fetch(
            "SELECT seq, entity, entity_id, action, payload, prev_hash, hash FROM audit_log")]
    finally:
        await conn.close()


async def _sql(url: str, *statements: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        for sql in statements:
            await conn.execute(sql)
    finally:
        await conn.close()


def test_seeded_chain_is_intact(stack: Stack) -> None:
    rows = run_async(_rows(stack.database_url))
    assert len(rows) >= 9  # issuance + 4 accounts opened + 4 funding transfers
    assert audit.verify_chain(rows) == []


@pytest.mark.parametrize("sql", ["UPDATE audit_log SET action = 'x' WHERE seq = 2",
                                 "DELETE FROM audit_log WHERE seq = 2",
                                 "TRUNCATE audit_log"])
def test_database_refuses_rewrites(stack: Stack, sql: str) -> None:
    with pytest.raises(asyncpg.RaiseError, match="append-only"):
        run_async(_sql(stack.database_url, sql))


def test_tampered_row_is_detected(stack: Stack) -> None:
    # An attacker with superuser rights switches the trigger off and edits a payload.
    run_async(_sql(stack.database_url,
                   "ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update",
                   "UPDATE audit_log SET payload = replace(payload, '500', '50000')"
                   " WHERE entity = 'transfer' AND seq = (SELECT min(seq) FROM audit_log"
                   " WHERE entity = 'transfer')",
                   "ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_update"))
    rows = run_async(_rows(stack.database_url))
    problems = audit.verify_chain(rows)
    tampered = min(int(r["seq"]) for r in rows if r["entity"] == "transfer")  # type: ignore[call-overload]
    assert problems == [{"seq": tampered, "problem": "hash",
                         "detail": "row content does not match its hash (tampered)"}]
