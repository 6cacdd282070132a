"""The system profile: everything the drill engine knows about a system under test.

The engine (scenarios, load, faults, checks, verdict) is generic; what is specific to one
system — how to start it, its network hops and services, the client that loads it, how
to read its final state, which invariants apply, its deliberate bugs and its own faults —
sits behind one :class:`SystemProfile`. ``payments`` is one profile; a team drills its own
service by writing another (see ``examples/``), without touching Faultline.

A profile is data plus four hooks: ``launcher`` (start/stop on a target), ``snapshot``
(the final state, as tables in the normalised shape of docs/contracts.md),
``settle_status`` (what keeps the system from having converged, cheaply, so a drill can
stop settling as soon as it has) and ``actions`` (system-specific faults such as pausing
a replica's replay).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from faultline.stack import Launcher, StackInfo

__all__ = [
    "PROCESS_FAULTS",
    "Action",
    "Hop",
    "Service",
    "StateSink",
    "SystemProfile",
    "Workload",
]

#: the process faults a launcher may offer on a service
PROCESS_FAULTS = ("kill", "pause", "restart")


@dataclass(frozen=True, slots=True)
class Hop:
    """One network hop between two parts of the system, behind its own fault proxy.

    ``name`` is what scenarios write (``api->postgres``), ``proxy`` the fault proxy's name
    for it (``api_postgres``). ``source`` and ``target`` are the services at either end;
    ``protocol`` is what speaks on it (``http``, ``postgres``, ``redis``, ``tcp``), so that
    a fault that only makes sense for one protocol (``http_error``) is only drawn there.
    ``traffic`` is how much of the system's work crosses it, relative to its other hops
    (1: an ordinary hop): ``faultline explore`` draws a hop's toxics in proportion, since
    a toxic on a hop that carries nothing while it is active touches nothing (a
    vacuous drill) — measure it under the workload (docs/explore.md says how).
    """

    name: str
    proxy: str
    source: str
    target: str
    protocol: str = "tcp"
    traffic: float = 1.0

    def __post_init__(self) -> None:
        if not self.traffic >= 0:
            raise ValueError(f"hop {self.name}: traffic must be 0 or more, not {self.traffic!r}")


@dataclass(frozen=True, slots=True)
class Service:
    """A part of the system that faults can kill, pause or restart.

    ``role`` says what it is for exploration and reports (``database``, ``replica``,
    ``cache``, ``api``, ``worker``, ...); ``faults`` the process faults it supports.
    """

    name: str
    role: str = "app"
    faults: tuple[str, ...] = PROCESS_FAULTS


@dataclass(frozen=True, slots=True)
class Workload:
    """The client side of the system: a Locust file whose users record a Jepsen history.

    ``locustfile`` is run headless by ``faultline.load`` (never imported by the engine);
    its users use :mod:`faultline.load.client` to record every operation as ``invoke``
    then ``ok`` / ``fail`` / ``info``. ``operations`` are its operation names with their
    default weights (a scenario's ``load.mix`` may only name these); ``keyed`` are those
    that carry an idempotency key and may move money. ``load.params`` of a scenario are
    handed to the users as they are, after ``validate_params``.
    """

    locustfile: Path
    operations: Mapping[str, float]
    keyed: frozenset[str] = frozenset()
    #: checks a scenario's ``load.params`` (the workload's own knobs): returns them
    #: normalised, or raises ``ValueError`` naming the bad one
    validate_params: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None


@dataclass(frozen=True, slots=True)
class Action:
    """A fault only this system has (pause a replica's WAL replay, fill a queue, ...).

    ``start(stack)`` injects it and ``stop(stack)`` heals it; each returns a mapping of
    integer effect counters (what it changed), like every other fault. ``stop`` must be
    safe to call when ``start`` failed or ran twice: the drill heals on every exit path.
    """

    name: str
    description: str
    start: Callable[[StackInfo], Mapping[str, int]]
    stop: Callable[[StackInfo], Mapping[str, int]]
    #: the service it acts on (shown in reports; drawn by exploration with that service)
    service: str | None = None


class StateSink(Protocol):
    """Where a profile writes a snapshot: one call per table, rows streamed."""

    def table(self, name: str, rows: Any) -> int:
        """Write every row (mappings) of table ``name``; returns how many."""

    def meta(self, name: str, value: Any) -> None:
        """Store one non-table value (e.g. ``external_inflow``)."""


class DictSink:
    """A :class:`StateSink` that keeps the snapshot in memory, ``{table: [rows], meta:
    value}`` (a small snapshot: the steady-state probe's, a test's)."""

    def __init__(self) -> None:
        self.state: dict[str, Any] = {}

    def table(self, name: str, rows: Any) -> int:
        kept = self.state.setdefault(name, [])
        before = len(kept)
        kept.extend(dict(r) for r in rows)
        return len(kept) - before

    def meta(self, name: str, value: Any) -> None:
        self.state[name] = value


@dataclass(frozen=True)
class SystemProfile:
    """One system under test, as the drill engine sees it.

    Built by the system's own package (``payments.drill.PROFILE``) and found by name
    (:func:`faultline.system.load_profile`): ``system: payments`` in a scenario.
    """

    name: str
    description: str
    hops: tuple[Hop, ...]
    services: tuple[Service, ...]
    workload: Workload
    #: the checkers of ``faultline.checks`` that apply to this system, in order
    invariants: tuple[str, ...]
    #: ``(target, run_dir, bugs, proxy_seed) -> Launcher`` for each target it supports
    launchers: Mapping[str, Callable[..., Launcher]]
    #: ``(stack, sink)``: write the final state's tables (docs/contracts.md §5)
    snapshot: Callable[[StackInfo, StateSink], None]
    #: ``stack -> [why it has not converged yet]``; [] once settled
    settle_status: Callable[[StackInfo], list[str]]
    #: deliberate bugs it can switch on: name -> what the code then does wrong
    bugs: Mapping[str, str] = field(default_factory=dict)
    actions: Mapping[str, Action] = field(default_factory=dict)
    #: alert rules evaluated on its metrics during a drill (``None``: none)
    alert_rules: Path | None = None
    #: well-known metrics, by meaning, for state-triggered faults and reports:
    #: ``{"outbox_backlog": "payments_outbox_backlog", "breaker_state": ...}``
    metrics: Mapping[str, str] = field(default_factory=dict)
    #: the metric name prefix of its services (the scraper keeps these series)
    metric_prefix: str = ""
    #: its scenario catalogue (shipped with the package), if any
    scenarios: Path | None = None

    def __post_init__(self) -> None:
        from faultline.history import KEYED_OPERATIONS

        odd = sorted(set(self.workload.keyed) - KEYED_OPERATIONS)
        if odd:
            # the idempotency checkers read these names: another name would pass unchecked
            raise ValueError(f"system {self.name!r}: keyed operations are recorded as "
                             f"{', '.join(sorted(KEYED_OPERATIONS))} in the history; "
                             f"{', '.join(odd)} is not one of them")
        missing = sorted(set(self.workload.keyed) - set(self.workload.operations))
        if missing:
            raise ValueError(f"system {self.name!r}: keyed operation(s) {', '.join(missing)} "
                             "are not operations of its workload")

    @property
    def targets(self) -> tuple[str, ...]:
        """The targets it can run on (``local``, ``compose``, ``external``)."""
        return tuple(self.launchers)

    def hop(self, name: str) -> Hop:
        """The hop called ``name`` (``KeyError`` when there is none)."""
        for hop in self.hops:
            if hop.name == name:
                return hop
        raise KeyError(name)

    def service(self, name: str) -> Service:
        """The service called ``name`` (``KeyError`` when there is none)."""
        for service in self.services:
            if service.name == name:
                return service
        raise KeyError(name)

    def launcher(self, target: str, *, run_dir: Path, bugs: Sequence[str] = (),
                 proxy_seed: int | None = None) -> Launcher:
        """A launcher of this system on ``target`` (not started yet)."""
        from faultline.stack import StackError

        make = self.launchers.get(target)
        if make is None:
            raise StackError(f"system {self.name!r} cannot run on target {target!r}; "
                             f"it supports {', '.join(self.launchers) or 'no target'}")
        unknown = sorted(set(bugs) - set(self.bugs))
        if unknown:
            known = ", ".join(sorted(self.bugs)) or "none"
            raise StackError(f"unknown bug(s) {', '.join(unknown)} for system {self.name!r}; "
                             f"known: {known}")
        return make(target=target, run_dir=run_dir, bugs=list(bugs), proxy_seed=proxy_seed)
