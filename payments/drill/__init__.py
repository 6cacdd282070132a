"""The payment stack as a system under test: its Faultline profile.

This is the one bridge between the drill engine and ``payments``: the engine finds it
through the ``faultline.systems`` entry point (``payments = "payments.drill:PROFILE"``)
and uses nothing else of this package. A team drilling its own service writes the same
few things (see ``examples/``): a topology (how its stack runs locally), its hops and
services, a locustfile of Jepsen clients, a snapshot of its final state in the
normalised tables, a settle probe, and which invariants apply.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from faultline.system import StateSink, SystemProfile, Workload

from ._actions import ACTIONS
from ._params import validate_params
from ._topology import HOPS, SERVICES

__all__ = ["PROFILE", "validate_params"]

HERE = Path(__file__).resolve().parent


def _local(*, target: str, run_dir: Path, bugs: list[str], proxy_seed: int | None) -> Any:
    from faultline.stack import LocalStack

    from ._local import local_topology

    return LocalStack(local_topology(), run_dir=run_dir, bugs=bugs, proxy_seed=proxy_seed)


def _compose(*, target: str, run_dir: Path, bugs: list[str], proxy_seed: int | None) -> Any:
    from ._compose import compose_stack

    return compose_stack(run_dir=run_dir, bugs=bugs, proxy_seed=proxy_seed)


def _external(*, target: str, run_dir: Path, bugs: list[str], proxy_seed: int | None) -> Any:
    from faultline.stack import ExternalStack, StackError

    if bugs:
        raise StackError("--bugs needs a stack the drill starts (local or compose)")
    return ExternalStack(
        system="payments", hops={h.name: h.proxy for h in HOPS},
        endpoint_env={"database_url": "FAULTLINE_DATABASE_URL",
                      "redis_url": "FAULTLINE_REDIS_URL",
                      "replica_url": "FAULTLINE_REPLICA_URL"},
        required=("database_url", "redis_url"))


def _snapshot(stack: Any, sink: StateSink) -> None:
    from ._state import snapshot

    snapshot(stack, sink)


def _settle_status(stack: Any) -> list[str]:
    from ._state import settle_status

    return settle_status(stack)


def _bugs() -> dict[str, str]:
    from payments.bugs import BUGS

    return {name: what for name, (what, _breaks) in BUGS.items()}


PROFILE = SystemProfile(
    name="payments",
    description="HTTP api, PostgreSQL double-entry ledger with outbox and hash-chained "
                "audit, read replica, Redis Streams relay and workers, risk service",
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
                "projection_converges", "audit_complete"),
    launchers={"local": _local, "compose": _compose, "external": _external},
    snapshot=_snapshot,
    settle_status=_settle_status,
    bugs=_bugs(),
    actions=ACTIONS,
    alert_rules=HERE / "alerts.yaml",
    metrics={"outbox_backlog": "payments_outbox_backlog",
             "stream_pending": "payments_worker_pending",
             "stream_lag": "payments_worker_stream_lag",
             "replica_lag": "payments_replica_lag_seconds",
             "breaker_state": "payments_breaker_state",
             "inflight": "payments_api_inflight_requests"},
    metric_prefix="payments_",
    scenarios=HERE / "scenarios",
)
