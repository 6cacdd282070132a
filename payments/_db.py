"""asyncpg pools as every payment service opens them."""

from __future__ import annotations

from typing import Any

import asyncpg

__all__ = ["create_pool"]


async def _no_session_reset(conn: Any) -> None:
    """Skip asyncpg's per-release ``RESET ALL; UNLISTEN *; ...`` round trip.

    Our services keep no session state (no SET, LISTEN, advisory session locks or
    cursors), and asyncpg still rolls back a transaction left open before calling this.
    On the transfer path the default reset was a third of all database round trips.
    """


async def create_pool(dsn: str, *, min_size: int = 0, max_size: int = 10,
                      command_timeout: float = 5.0) -> Any:
    """A pool that starts even while the database is down (``min_size=0`` connects on
    use) and does not reset sessions on release."""
    return await asyncpg.create_pool(dsn, min_size=min_size, max_size=max_size,
                                     command_timeout=command_timeout, reset=_no_session_reset,
                                     timeout=3.0)  # connect timeout (asyncpg's default: 60 s)
