"""The services run as their own login role, created by ``python -m payments.migrate``:
password (SCRAM-SHA-256) authentication, no superuser, no DDL, no rewriting the audit log.

A PostgreSQL of this module's own, because the test puts a scram-sha-256 line for the
role in front of its pg_hba.conf (the embedded servers otherwise trust every local user).
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import asyncpg
import pyotp
import pytest
from payments_stack import REPO, Stack, ledger_problems, new_stack, random_key, run_async

from faultline.stack._embedded import EmbeddedPostgres, EmbeddedRedis
from payments._db_role import APP_GRANTS, NO_ACCESS

pytestmark = pytest.mark.stack

ROLE = "payments_app"
PASSWORD = "pw-" + secrets.token_urlsafe(24)


@pytest.fixture(scope="module")
def server() -> Iterator[EmbeddedPostgres]:
    pg = EmbeddedPostgres().start()
    try:
        hba = pg.data_dir / "pg_hba.conf"
        hba.write_text(f"host all {ROLE} 127.0.0.1/32 scram-sha-256\n" + hba.read_text())
        run_async(_sql(pg.url, "SELECT pg_reload_conf()"))
        yield pg
    finally:
        pg.cleanup()


async def _sql(url: str, sql: str, *args: Any) -> Any:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


def _migrate(stack: Stack, password: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PAYMENTS_DATABASE_URL": stack.database_url,
           "PAYMENTS_APP_ROLE": ROLE, "PAYMENTS_APP_PASSWORD": password}
    return subprocess.run([sys.executable, "-m", "payments.migrate"], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=60)


def _app_url(stack: Stack, password: str = PASSWORD) -> str:
    host_port, database = stack.database_url.split("@", 1)[1].rsplit("/", 1)
    return f"postgresql://{ROLE}:{password}@{host_port}/{database}"


@pytest.fixture(scope="module")
def stack(server: EmbeddedPostgres, module_redis: EmbeddedRedis) -> Iterator[Stack]:
    s = new_stack(server, module_redis.url, "role")  # migrated as the superuser
    try:
        for _ in range(2):  # idempotent: the second run only re-applies the role's grants
            done = _migrate(s, PASSWORD)
            assert done.returncode == 0, done.stderr
        assert f"app role {ROLE}" in done.stdout
        s.run_seed("--merchants", "1", "--accounts", "4", "--balance", "100000")
        app = _app_url(s)
        risk = s.start("risk")
        s.start("api", PAYMENTS_DATABASE_URL=app, PAYMENTS_RISK_URL=risk.url)
        s.start("api", "api-bugs", PAYMENTS_DATABASE_URL=app,
                PAYMENTS_BUGS="audit_chain_skip,idempotency_not_atomic,outbox_outside_tx,"
                              "non_negative_in_python")
        s.start("relay", PAYMENTS_DATABASE_URL=app)
        s.start("worker", "worker-1", PAYMENTS_DATABASE_URL=app, PAYMENTS_WORKER_NAME="worker-1")
        yield s
    finally:
        s.stop_all()


def test_services_work_as_the_app_role(stack: Stack) -> None:
    m = stack.seed["merchants"][0]
    src, dst = m["accounts"][0], m["accounts"][1]
    with stack.client(key=m["api_key"]) as c:
        opened = c.post("/v1/accounts", json={"currency": "EUR", "holder": {"name": "Ada"}})
        assert opened.status_code == 201, opened.text
        for i in range(20):
            r = c.post("/v1/transfers", headers={"idempotency-key": random_key()},
                       json={"from_account": src, "to_account": dst, "amount": 10 + i,
                             "currency": "EUR"})
            assert r.status_code == 201, r.text
        assert c.get(f"/v1/transfers/{r.json()['id']}").status_code == 200
        assert c.get(f"/v1/accounts/{src}/statement").status_code == 200
    with stack.client(key=stack.seed["admin_api_key"]) as c:
        code = pyotp.TOTP(stack.seed["admin_totp_secret"]).now()
        r = c.get("/v1/admin/audit/verify", headers={"x-totp": code})
        assert r.status_code == 200, r.text
        assert r.json()["intact"] is True
    with stack.client("api-bugs", key=m["api_key"]) as c:  # the deliberate bugs still run
        for _ in range(3):
            r = c.post("/v1/transfers", headers={"idempotency-key": random_key()},
                       json={"from_account": dst, "to_account": src, "amount": 1,
                             "currency": "EUR"})
            assert r.status_code == 201, r.text
    snap = stack.wait_converged(timeout=30)
    assert ledger_problems(snap) == []
    database = stack.database_url.rsplit("/", 1)[1]
    users = run_async(_sql(stack.database_url, "SELECT DISTINCT usename FROM pg_stat_activity"
                                               " WHERE datname = $1", database))
    assert ROLE in {u["usename"] for u in users}


@pytest.mark.parametrize("sql", [
    "DROP TABLE audit_log",
    "UPDATE audit_log SET payload = '{}'",
    "DELETE FROM audit_log",
    "TRUNCATE audit_log",
    "INSERT INTO audit_head VALUES (2, 0, '')",
    "CREATE TABLE intruder (x int)",
    "CREATE FUNCTION intruder() RETURNS int LANGUAGE sql AS 'SELECT 1'",
    "ALTER TABLE accounts ADD COLUMN intruder int",
    "UPDATE accounts SET merchant_id = 'm_platform'",
    "UPDATE merchants SET api_key_hash = NULL",
    "INSERT INTO merchants (id, name) VALUES ('m_evil', 'evil')",
    "UPDATE admin_credentials SET api_key_hash = '\\x00'",
    "DELETE FROM transfers",
    "UPDATE entries SET amount = 0",
    "SELECT * FROM schema_migrations",
    "CREATE ROLE intruder SUPERUSER",
])
def test_the_app_role_cannot(stack: Stack, sql: str) -> None:
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        run_async(_sql(_app_url(stack), sql))


def test_the_app_role_has_no_special_attributes_and_a_scram_password(stack: Stack) -> None:
    row = run_async(_sql(stack.database_url,
                         "SELECT rolsuper, rolcreatedb, rolcreaterole, rolreplication,"
                         " rolbypassrls, rolcanlogin, rolpassword FROM pg_authid"
                         " WHERE rolname = $1", ROLE))[0]
    assert not any(row[k] for k in ("rolsuper", "rolcreatedb", "rolcreaterole",
                                    "rolreplication", "rolbypassrls"))
    assert row["rolcanlogin"]
    assert row["rolpassword"].startswith("SCRAM-SHA-256$4096:")
    assert PASSWORD not in row["rolpassword"]
    with pytest.raises(asyncpg.InvalidPasswordError):
        run_async(_sql(_app_url(stack, "not-" + PASSWORD), "SELECT 1"))


def test_every_table_is_granted_or_denied_on_purpose(stack: Stack) -> None:
    rows = run_async(_sql(stack.database_url, "SELECT table_name FROM information_schema.tables"
                                              " WHERE table_schema = 'public'"))
    assert {r["table_name"] for r in rows} == set(APP_GRANTS) | NO_ACCESS


def test_migrate_rotates_the_password(stack: Stack) -> None:
    """Last in the module: running services keep their open connections."""
    new = "pw-" + secrets.token_urlsafe(24)
    assert _migrate(stack, new).returncode == 0
    assert run_async(_sql(_app_url(stack, new), "SELECT 1"))
    with pytest.raises(asyncpg.InvalidPasswordError):
        run_async(_sql(_app_url(stack), "SELECT 1"))
    bad = _migrate(stack, "short")
    assert bad.returncode == 2
    assert "at least 16" in bad.stderr
