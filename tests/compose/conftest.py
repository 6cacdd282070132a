"""Drills against the containerised payment stack on a real Docker engine.

The engine tests (``test_container_faults.py``) are skipped unless ``FAULTLINE_COMPOSE=1``:
they need ``DOCKER_HOST`` pointing at an engine that has the images
(``compose/ci/test-compose.sh`` starts one, builds them and sets everything).
``FAULTLINE_COMPOSE_HOST_NETWORK=1`` selects the host-network override (ports from
compose/ci/compose.env, which the script exports). ``FAULTLINE_COMPOSE_RUN_DIR`` keeps the
run directory (resolved compose file, container logs, run folders).

The stack comes from the payments profile's ``compose`` launcher through a
:class:`~faultline.drill.StackPool`, exactly as ``faultline run`` gets it: the tests that
act on it directly and the drills (:func:`faultline.drill.run_drill`) share one stack.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ENABLED = os.environ.get("FAULTLINE_COMPOSE") == "1"
REPO = Path(__file__).resolve().parents[2]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if ENABLED:
        return
    skip = pytest.mark.skip(reason="containerised stack: set FAULTLINE_COMPOSE=1 "
                                   "(make test-compose)")
    drills = Path(__file__).parent / "test_container_faults.py"
    for item in items:
        if Path(str(item.fspath)) == drills:  # the file and unit tests need no engine
            item.add_marker(skip)


@pytest.fixture(scope="session")
def run_root() -> Iterator[Path]:
    kept = os.environ.get("FAULTLINE_COMPOSE_RUN_DIR")
    if kept:
        path = Path(kept)
        path.mkdir(parents=True, exist_ok=True)
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="faultline-compose-") as tmp:
        yield Path(tmp)


@pytest.fixture(scope="session")
def pool() -> Iterator[Any]:
    """The session's stack pool (always closed at the end)."""
    from faultline.drill import StackPool

    stacks = StackPool(reuse=True)
    try:
        yield stacks
    finally:
        stacks.close()


@pytest.fixture
def compose_stack(pool: Any, run_root: Path) -> Any:
    """The payments compose launcher, started (or the one the pool already holds)."""
    from faultline.system import load_profile

    launcher, _info, _fresh = pool.acquire(load_profile("payments"), "compose", (),
                                           run_root / "stack", print)
    return launcher
