"""The payment stack as containers: its :class:`~faultline.stack._compose.ComposeSpec`.

The compose files ship with this package (``compose/compose.yaml``, the host-network
override ``compose/compose.host.yaml`` and the Toxiproxy configs), so an installed
``faultline[drill]`` finds them. PostgreSQL, Redis, Toxiproxy, a one-shot ``migrate``,
then risk, api, relay and two workers, each app reaching PostgreSQL, Redis and risk only
through its hops' proxies; no read replica. Port settings are ``FAULTLINE_<NAME>_PORT``
(the compose file's variables); the workload data is the JSON that ``payments.seed``
prints in a one-off container of the app image; deliberate bugs reach every app
container as ``PAYMENTS_BUGS``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from faultline.stack._compose import ComposeSpec, ComposeStack, OneOff

from ._local import DEFAULT_SEED
from ._topology import HOPS, SERVICES

__all__ = ["COMPOSE_DIR", "COMPOSE_SERVICES", "PORTS", "compose_spec", "compose_stack"]

#: the compose files, shipped as package data
COMPOSE_DIR = Path(__file__).resolve().parent / "compose"
#: port settings (``FAULTLINE_<NAME>_PORT``) and their defaults
PORTS: Mapping[str, int] = {"postgres": 5432, "redis": 6379, "toxiproxy": 8474, "api": 8080,
                            "risk": 8081, "relay": 8082, "worker1": 8083, "worker2": 8084}
#: the services of SERVICES this stack has (no replica)
COMPOSE_SERVICES = tuple(s.name for s in SERVICES if s.name != "replica")
#: service -> the port setting its /metrics answers on
METRICS = {"api": "api", "risk": "risk", "relay": "relay", "worker-1": "worker1",
           "worker-2": "worker2"}


def compose_hops(config: Path = COMPOSE_DIR / "toxiproxy.json") -> dict[str, str]:
    """Hop name -> proxy name, for the hops whose proxy the Toxiproxy config creates."""
    names = {p["name"] for p in json.loads(config.read_text())}
    return {h.name: h.proxy for h in HOPS if h.proxy in names}


def _endpoints(ports: Mapping[str, int]) -> dict[str, str]:
    """PostgreSQL and Redis through their published ports (never through the proxy)."""
    return {"database_url": f"postgresql://faultline:faultline@127.0.0.1:{ports['postgres']}"
                            "/payments",
            "redis_url": f"redis://127.0.0.1:{ports['redis']}/0"}


def compose_spec(*, bugs: Sequence[str] = ()) -> ComposeSpec:
    """The payment stack's compose spec, with ``bugs`` switched on in every app."""
    return ComposeSpec(
        system="payments",
        files=(COMPOSE_DIR / "compose.yaml",),
        host_network_files=(COMPOSE_DIR / "compose.host.yaml",),
        ports=PORTS,
        entry="api",
        proxy="toxiproxy",
        metrics=METRICS,
        endpoints=_endpoints,
        hops=compose_hops(),
        services=COMPOSE_SERVICES,
        one_shot=frozenset({"migrate"}),
        workload=OneOff("migrate", ("python3", "-m", "payments.seed", *DEFAULT_SEED)),
        env={"PAYMENTS_BUGS": ",".join(bugs)},
    )


def compose_stack(*, run_dir: Path, bugs: Sequence[str] = (), proxy_seed: int | None = None,
                  **options: Any) -> ComposeStack:
    """The ``compose`` launcher of the payments profile (not started)."""
    return ComposeStack(compose_spec(bugs=bugs), run_dir=run_dir, proxy_seed=proxy_seed,
                        **options)
