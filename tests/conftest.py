"""Shared fixtures: real PostgreSQL and Redis servers on 127.0.0.1, one per session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from faultline.stack._embedded import EmbeddedPostgres, EmbeddedRedis


@pytest.fixture(scope="session")
def redis_server() -> Iterator[EmbeddedRedis]:
    """A real redis-server for the whole test session."""
    server = EmbeddedRedis().start()
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[EmbeddedPostgres]:
    """A real PostgreSQL cluster for the whole test session."""
    server = EmbeddedPostgres().start()
    try:
        yield server
    finally:
        server.cleanup()
