"""Apply the SQL migrations in payments/migrations/ in name order, once each; then, when
``PAYMENTS_APP_ROLE`` and ``PAYMENTS_APP_PASSWORD`` are set, create or update the
services' login role with only the privileges they need (``payments._db_role``).

``python -m payments.migrate`` is idempotent: applied versions are tracked in
``schema_migrations``, an advisory lock keeps concurrent runs from racing, and the role's
attributes, password and grants are set again on every run. Run it as a superuser (or a
role with CREATEROLE that owns the schema); the services then connect as the app role.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import asyncpg

from payments._config import load_settings
from payments._db_role import ensure_app_role

__all__ = ["MIGRATIONS_DIR", "main", "migrate"]

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
_LOCK_ID = 0x6661756C74  # "fault": one advisory lock id for the migrator


async def migrate(database_url: str, *, app_role: str = "", app_password: str = ""
                  ) -> list[str]:
    """Apply pending migrations; return the versions applied now. With ``app_role`` (and
    its password), also create/update that login role and its grants."""
    conn = await asyncpg.connect(database_url)
    applied_now: list[str] = []
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_ID)
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
            version = path.stem
            if version in done:
                continue
            async with conn.transaction():
                await conn.execute(path.read_text())
                await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", version)
            applied_now.append(version)
        if app_role:
            await ensure_app_role(conn, app_role, app_password)
    finally:
        await conn.close()
    return applied_now


def main() -> int:
    """Entry point of ``python -m payments.migrate``."""
    role = os.environ.get("PAYMENTS_APP_ROLE", "").strip()
    password = os.environ.get("PAYMENTS_APP_PASSWORD", "")
    if bool(role) != bool(password):
        print("PAYMENTS_APP_ROLE and PAYMENTS_APP_PASSWORD go together", file=sys.stderr)
        return 2
    try:
        applied = asyncio.run(migrate(load_settings().database_url, app_role=role,
                                      app_password=password))
    except ValueError as exc:  # a bad role name or password: say which, no traceback
        print(f"migrate: {exc}", file=sys.stderr)
        return 2
    print("applied: " + (", ".join(applied) if applied else "nothing (up to date)"))
    if role:
        print(f"app role {role}: login, SCRAM-SHA-256 password, grants up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
