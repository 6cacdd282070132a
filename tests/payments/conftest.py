"""Fixtures of the payments tests (helpers live in payments_stack.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from faultline.stack._embedded import EmbeddedRedis


@pytest.fixture(scope="module")
def module_redis() -> Iterator[EmbeddedRedis]:
    """A Redis of this module's own (tests that restart Redis must not share it)."""
    server = EmbeddedRedis().start()
    try:
        yield server
    finally:
        server.cleanup()
