"""Apply the SQL migrations in payments/migrations/ in name order, once each.

``python -m payments.migrate`` is idempotent: applied versions are tracked in
``schema_migrations``, and an advisory lock keeps concurrent runs from racing.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import asyncpg

from payments._config import load_settings

__all__ = ["MIGRATIONS_DIR", "main", "migrate"]

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
_LOCK_ID = 0x6661756C74  # "fault": one advisory lock id for the migrator


async def migrate(database_url: str) -> list[str]:
    """Apply pending migrations; return the versions applied now."""
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
    finally:
        await conn.close()
    return applied_now


def main() -> int:
    """Entry point of ``python -m payments.migrate``."""
    applied = asyncio.run(migrate(load_settings().database_url))
    print("applied: " + (", ".join(applied) if applied else "nothing (up to date)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
