"""The wallet as a system under test: its Faultline profile, ``wallet.drill:PROFILE``.

Built only from Faultline's public API (``faultline.system``, ``faultline.stack``, and
``faultline.load.client.user`` inside the locustfile). A scenario names it with
``system: wallet.drill:PROFILE``; ``examples`` must be importable (``PYTHONPATH=examples``,
see the README beside this package).

The pieces, in the order a team writes them for its own service:

1. hops and services (``_topology.py``): what faults can act on;
2. the local topology (``_topology.py``): how the stack runs, every hop via the proxy;
3. the workload (``locustfile.py``, ``_params.py``): the Jepsen client;
4. the snapshot and the settle probe (``_state.py``): the final state as the checkers'
   tables, and when the system has converged;
5. this file: the invariants that apply and the deliberate bugs, tied together.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from faultline.system import StateSink, SystemProfile, Workload
from wallet.bugs import BUGS  # the one table of them (plain data, no Django)

from ._params import validate_params
from ._topology import HOPS, SERVICES

__all__ = ["PROFILE"]

HERE = Path(__file__).resolve().parent


def _local(*, target: str, run_dir: Path, bugs: list[str], proxy_seed: int | None) -> Any:
    from faultline.stack import LocalStack

    from ._topology import local_topology

    return LocalStack(local_topology(), run_dir=run_dir, bugs=bugs, proxy_seed=proxy_seed)


def _snapshot(stack: Any, sink: StateSink) -> None:
    from ._state import snapshot

    snapshot(stack, sink)


def _settle_status(stack: Any) -> list[str]:
    from ._state import settle_status

    return settle_status(stack)


PROFILE = SystemProfile(
    name="wallet",
    description="e-money wallets: Django + django-hordak double-entry books on PostgreSQL, "
                "served by gunicorn; idempotency key and money in one transaction; "
                "signed webhooks (outbox, notifier) to the merchant's receiver",
    hops=HOPS,
    services=SERVICES,
    workload=Workload(
        locustfile=HERE / "locustfile.py",
        operations={"transfer": 60.0, "replay": 10.0, "replay_diff": 5.0, "balance": 15.0,
                    "statement": 10.0},
        keyed=frozenset({"transfer", "replay", "replay_diff"}),
        validate_params=validate_params,
    ),
    invariants=("conservation", "balanced_entries", "non_negative",
                "acknowledged_exactly_once", "idempotent_replay", "outbox_delivered",
                "projection_converges"),
    launchers={"local": _local},
    snapshot=_snapshot,
    settle_status=_settle_status,
    bugs=dict(BUGS),
    scenarios=HERE.parent / "scenarios",
)
