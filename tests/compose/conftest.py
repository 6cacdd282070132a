"""Drills against the containerised stack on a real Docker engine (issue 6).

The drills (``test_container_faults.py``) are skipped unless ``FAULTLINE_COMPOSE=1``: they need ``DOCKER_HOST`` pointing at an engine
that has the images (``compose/ci/test-compose.sh`` starts one, builds them and sets
everything). ``FAULTLINE_COMPOSE_HOST_NETWORK=1`` selects the CI override (host
networking, ports from compose/ci/compose.env). ``FAULTLINE_COMPOSE_RUN_DIR`` keeps the
run directory (resolved compose file, container logs, histories, snapshots).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ENABLED = os.environ.get("FAULTLINE_COMPOSE") == "1"
REPO = Path(__file__).resolve().parents[2]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if ENABLED:
        return
    skip = pytest.mark.skip(reason="containerised stack: set FAULTLINE_COMPOSE=1 (make test-compose)")
    drills = Path(__file__).parent / "test_container_faults.py"
    for item in items:
        if Path(str(item.fspath)) == drills:  # the file and nemesis unit tests need no engine
            item.add_marker(skip)


def compose_env() -> dict[str, str]:
    """Port settings for host networking (compose/ci/compose.env) unless already set."""
    env: dict[str, str] = {}
    if os.environ.get("FAULTLINE_COMPOSE_HOST_NETWORK") == "1":
        for line in (REPO / "compose" / "ci" / "compose.env").read_text().splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                key, _, value = line.partition("=")
                env[key] = os.environ.get(key, value)
    return env


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
def compose_stack(run_root: Path) -> Iterator[object]:
    """The stack, up and seeded once for the session; always taken down."""
    from faultline.stack._compose import ComposeStack

    stack = ComposeStack(
        run_dir=run_root / "stack",
        env=compose_env(),
        host_network=os.environ.get("FAULTLINE_COMPOSE_HOST_NETWORK") == "1",
        project=os.environ.get("FAULTLINE_COMPOSE_PROJECT", ""),
        ready_timeout=180.0,
    )
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()


@pytest.fixture
def nemesis(compose_stack: object) -> Iterator[object]:
    """A container nemesis for the session's stack; every fault healed after the test."""
    from faultline.faults._container import ContainerNemesis

    nem = ContainerNemesis(project=compose_stack.project, client=compose_stack.client)  # type: ignore[attr-defined]
    try:
        yield nem
    finally:
        errors = nem.heal()
        compose_stack.wait_healthy(timeout=120)  # type: ignore[attr-defined]
        assert not errors, errors
