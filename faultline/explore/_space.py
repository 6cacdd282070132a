"""The fault space: everything an exploration may draw, built from a system's profile.

The default space is the profile itself read as a search space — every hop with every
toxic its protocol admits, both directions and both toxicity scopes; every service with
the process faults it allows and the target can inject; the system's actions; faults
started by a trigger; and the incident patterns of :mod:`._patterns` instantiated over
the profile's hops, services and roles — so it grows as the profile grows. A space file
(:mod:`._spacefile`) narrows or re-weights it; nothing here knows a system by name.

Weights are relative and only their ratios matter; a weight of 0 removes a choice.
Maps keep the profile's order, so that one seed draws the same drills on every machine.
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from faultline.scenario import TOXIC_ATTRIBUTES, TOXIC_TYPES
from faultline.scenario._system import HTTP_ONLY
from faultline.system import PROCESS_FAULTS, SystemProfile

__all__ = ["DEFAULT_ATTRIBUTES", "FAULT_KINDS", "FaultSpace", "LoadSpace", "Range", "pick"]

#: what one drawn fault item can be (``pattern``: one of the incident patterns)
FAULT_KINDS = ("toxic", "kill", "pause", "restart", "action", "pattern")
#: the load profiles exploration draws (``soak`` is minutes long by nature)
LOAD_PROFILES = ("steady", "ramp", "spike")


@dataclass(frozen=True, slots=True)
class Range:
    """A closed interval to draw from; ``log`` draws evenly in orders of magnitude
    (latencies: 20 ms and 200 ms are as different as 200 ms and 2 s)."""

    low: float
    high: float
    log: bool = False

    def draw(self, rng: random.Random) -> float:
        if self.high <= self.low:
            return self.low
        if self.log and self.low > 0:
            return math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        return rng.uniform(self.low, self.high)

    def to_json(self) -> list[float]:
        return [self.low, self.high]


def pick(rng: random.Random, weights: Mapping[Any, float]) -> Any:
    """One key of ``weights``, with probability proportional to its weight."""
    items = [(k, w) for k, w in weights.items() if w > 0]
    if not items:
        raise ValueError("nothing to choose from (every weight is 0)")
    point = rng.random() * sum(w for _, w in items)
    for key, weight in items:
        point -= weight
        if point < 0:
            return key
    return items[-1][0]


#: attribute ranges of each toxic (ms unless said); attributes left out take the toxic's
#: own default. A toxic whose required attribute has no range here is not drawn until
#: a space file gives one.
DEFAULT_ATTRIBUTES: dict[str, dict[str, Range]] = {
    "latency": {"latency": Range(10, 1000, log=True), "jitter": Range(0, 200)},
    "bandwidth": {"rate": Range(4, 256, log=True)},
    "slow_close": {"delay": Range(50, 2000, log=True)},
    "timeout": {"timeout": Range(0, 3000)},
    "reset_peer": {"timeout": Range(0, 1000)},
    "slicer": {"average_size": Range(1, 64, log=True), "size_variation": Range(0, 16),
               "delay": Range(0, 5000)},
    "limit_data": {"bytes": Range(64, 16384, log=True)},
    "connect_delay": {"delay": Range(50, 3000, log=True)},
    "http_error": {"status": Range(429, 504)},
    "half_close": {"after_bytes": Range(0, 4096)},
    "stall": {"after_bytes": Range(0, 4096), "timeout": Range(0, 3000)},
}
#: toxics drawn twice as often as the rest: those that change a request's fate (cut,
#: lost reply, stalled or half-closed exchange) and latency, which widens the windows
#: races need; the others mostly make a hop slow (the first exploration's bugs all
#: needed one of these)
TOXIC_WEIGHTS: dict[str, float] = {t: 2.0 for t in (
    "latency", "down", "reset_peer", "lost_ack", "timeout", "half_close", "stall")}
#: statuses an ``http_error`` draws from (its range above is only a bound)
HTTP_STATUSES = (429, 500, 502, 503, 504)
#: thresholds (``above``) for triggers on the engine's well-known metric meanings
METRIC_THRESHOLDS: dict[str, Range] = {
    "outbox_backlog": Range(5, 50, log=True),
    "stream_pending": Range(1, 20, log=True),
    "stream_lag": Range(5, 50, log=True),
    "replica_lag": Range(0.5, 3),
    "breaker_state": Range(0.5, 0.5),
    "inflight": Range(2, 8),
}
#: thresholds for a metric meaning not in the table above
OTHER_METRIC = Range(1, 10, log=True)


@dataclass(frozen=True)
class LoadSpace:
    """The loads to draw: profile, users, duration and the operation mix."""

    profiles: dict[str, float] = field(default_factory=lambda: {"steady": 3.0, "ramp": 1.0,
                                                                  "spike": 1.0})
    users: Range = Range(4, 12)
    #: seconds of load: short, so that a budget of 20 drills runs in minutes on 2 cores
    duration: Range = Range(10, 18)
    #: share of drills whose operation mix is redrawn (the rest use the workload's own)
    random_mix: float = 0.5
    spike_multiplier: Range = Range(1.5, 3.0)
    #: the workload's params to draw (``load.params``), each from its range
    params: dict[str, Range] = field(default_factory=dict)


@dataclass(frozen=True)
class FaultSpace:
    """Everything :class:`~faultline.explore.DrillGenerator` draws from.

    Build it with :meth:`from_profile` (the default space) and narrow it with a space
    file (:func:`faultline.explore.load_space`).
    """

    profile: SystemProfile
    load: LoadSpace = field(default_factory=LoadSpace)
    #: how many fault items a drill has (a pattern is one item of several faults)
    count: dict[int, float] = field(default_factory=lambda: {1: 3.0, 2: 4.0, 3: 3.0})
    kinds: dict[str, float] = field(default_factory=lambda: {
        "toxic": 4.0, "kill": 1.5, "pause": 1.0, "restart": 1.0, "action": 0.5,
        "pattern": 3.0})
    patterns: dict[str, float] = field(default_factory=dict)
    hops: dict[str, float] = field(default_factory=dict)
    toxics: dict[str, float] = field(default_factory=dict)
    services: dict[str, float] = field(default_factory=dict)
    #: the process faults each drawable service takes (profile ∩ target's controls)
    service_faults: dict[str, tuple[str, ...]] = field(default_factory=dict)
    signals: dict[str, float] = field(default_factory=lambda: {
        "SIGKILL": 5.0, "SIGTERM": 2.0, "SIGINT": 1.0, "SIGQUIT": 1.0, "SIGHUP": 0.5,
        "SIGABRT": 0.5})
    actions: dict[str, float] = field(default_factory=dict)
    streams: dict[str, float] = field(default_factory=lambda: {"downstream": 1.0,
                                                                 "upstream": 1.0})
    #: ``default`` leaves the scope out (the scenario model's per-toxic default)
    scopes: dict[str, float] = field(default_factory=lambda: {"default": 2.0,
                                                                "connection": 1.0,
                                                                "exchange": 1.0})
    #: share of toxics at toxicity 1 (the rest draw it from ``toxicity``)
    full_toxicity: float = 0.5
    toxicity: Range = Range(0.05, 0.6)
    attributes: dict[str, dict[str, Range]] = field(
        default_factory=lambda: {t: dict(a) for t, a in DEFAULT_ATTRIBUTES.items()})
    #: share of single faults that start on a trigger (``when:``) instead of a time
    triggered: float = 0.15
    #: the triggers of single faults: a metric rarely crosses a bound on its own (the
    #: first exploration skipped every such fault), so by default metric triggers come
    #: in the ``cascade`` pattern, after a fault that may drive the metric
    triggers: dict[str, float] = field(default_factory=lambda: {"operations": 1.0})
    #: metric meaning -> the thresholds its triggers draw (``above``)
    metrics: dict[str, Range] = field(default_factory=dict)
    #: client operations per second per user, to place ``operations`` triggers
    ops_per_user: float = 8.0
    #: how long a windowed fault lasts (seconds)
    window: Range = Range(1.0, 8.0)
    #: how long a pause lasts: a pause matters when it outlasts a lease, a claim or a
    #: timeout, so it runs longer than other windows
    pause: Range = Range(2.0, 9.0)
    #: a kill's ``restart_after``, and the share of kills that have one
    restart_after: Range = Range(0.5, 4.0)
    restart_share: float = 0.8
    settle: float = 20.0
    #: SLO objectives every drawn drill is judged by (scenario syntax), default none
    slos: tuple[dict[str, Any], ...] = ()
    #: the invariants drawn drills check (``None``: every one of the system's)
    invariants: tuple[str, ...] | None = None

    # ------------------------------------------------------------ building
    @classmethod
    def from_profile(cls, profile: SystemProfile, *,
                     controls: Iterable[str] = PROCESS_FAULTS,
                     hops: Iterable[str] | None = None,
                     services: Iterable[str] | None = None) -> FaultSpace:
        """The default space of ``profile`` on a target that offers ``controls`` and
        has the ``hops``/``services`` given (default: all of the profile's)."""
        from ._patterns import PATTERNS

        present_hops = set(hops) if hops is not None else {h.name for h in profile.hops}
        present_services = (set(services) if services is not None
                            else {s.name for s in profile.services})
        allowed = set(controls)
        service_faults = {s.name: tuple(f for f in s.faults if f in allowed)
                          for s in profile.services if s.name in present_services}
        space = cls(
            profile=profile,
            hops={h.name: h.traffic for h in profile.hops if h.name in present_hops},
            toxics={t: TOXIC_WEIGHTS.get(t, 1.0) for t in TOXIC_TYPES},
            services={s: 1.0 for s, f in service_faults.items() if f},
            service_faults={s: f for s, f in service_faults.items() if f},
            actions={a: 1.0 for a in profile.actions},
            metrics={m: METRIC_THRESHOLDS.get(m, OTHER_METRIC) for m in profile.metrics},
            patterns={name: 1.0 for name in PATTERNS},
        )
        return space.pruned()

    def replace(self, **changes: Any) -> FaultSpace:
        """A copy with ``changes`` (then pruned of what can no longer be drawn)."""
        return dataclasses.replace(self, **changes).pruned()

    def pruned(self) -> FaultSpace:
        """Zero weights dropped; toxics without attribute ranges, kinds and patterns
        that nothing in the space can instantiate, removed."""
        from ._patterns import PATTERNS

        def positive(weights: Mapping[Any, float]) -> dict[Any, float]:
            return {k: float(w) for k, w in weights.items() if w > 0}

        toxics = {t: w for t, w in positive(self.toxics).items() if self._drawable_toxic(t)}
        out = dataclasses.replace(
            self, hops=positive(self.hops), toxics=toxics, services=positive(self.services),
            actions=positive(self.actions), signals=positive(self.signals),
            streams=positive(self.streams), scopes=positive(self.scopes),
            triggers=positive(self.triggers), count=positive(self.count))
        if not out.metrics:
            out = dataclasses.replace(out, triggers={k: w for k, w in out.triggers.items()
                                                     if k != "metric"})
        patterns = {p: w for p, w in positive(self.patterns).items()
                    if p in PATTERNS and PATTERNS[p].applies(out)}
        kinds = positive(self.kinds)
        present = {"toxic": bool(out.toxic_pairs()), "action": bool(out.actions),
                   "pattern": bool(patterns)}
        for fault in PROCESS_FAULTS:
            present[fault] = bool(out.services_taking(fault))
        kinds = {k: w for k, w in kinds.items() if present.get(k, False)}
        if "pattern" not in kinds:
            patterns = {}
        return dataclasses.replace(out, patterns=patterns, kinds=kinds)

    def _drawable_toxic(self, toxic: str) -> bool:
        model = TOXIC_ATTRIBUTES.get(toxic)
        if model is None:
            return False
        ranges = self.attributes.get(toxic, {})
        return all(name in ranges for name, f in model.model_fields.items() if f.is_required())

    # ------------------------------------------------------------ queries
    def toxics_for(self, hop: str) -> dict[str, float]:
        """The toxics (with weights) that fit ``hop``'s protocol."""
        protocol = self.profile.hop(hop).protocol
        return {t: w for t, w in self.toxics.items()
                if t not in HTTP_ONLY or protocol == "http"}

    def toxic_pairs(self) -> list[tuple[str, str]]:
        """Every ``(hop, toxic)`` the space can draw."""
        return [(h, t) for h in self.hops for t in self.toxics_for(h)]

    def services_taking(self, fault: str) -> dict[str, float]:
        """The services (with weights) that take the process fault ``fault``."""
        return {s: w for s, w in self.services.items()
                if fault in self.service_faults.get(s, ())}

    def role(self, service: str) -> str:
        return self.profile.service(service).role

    def outgoing(self, service: str) -> list[str]:
        """The space's hops that ``service`` talks through (by its name or role)."""
        svc = self.profile.service(service)
        return [h.name for h in self.profile.hops
                if h.name in self.hops and h.source in (svc.name, svc.role)]

    def incoming(self, target: str) -> list[str]:
        """The space's hops that lead to ``target`` (a service name or role)."""
        return [h.name for h in self.profile.hops if h.name in self.hops and h.target == target]

    def is_empty(self) -> bool:
        return not self.kinds or not self.count

    def describe(self) -> dict[str, Any]:
        """The space as plain data (``explore.json``; what was explored)."""
        def rng(r: Range) -> list[float]:
            return r.to_json()

        return {
            "system": self.profile.name,
            "load": {"profiles": self.load.profiles, "users": rng(self.load.users),
                     "duration": rng(self.load.duration), "random_mix": self.load.random_mix,
                     "params": {k: rng(v) for k, v in self.load.params.items()}},
            "count": {str(k): w for k, w in self.count.items()}, "kinds": self.kinds,
            "patterns": self.patterns, "hops": self.hops, "toxics": self.toxics,
            "services": {s: {"weight": w, "faults": list(self.service_faults[s])}
                         for s, w in self.services.items()},
            "signals": self.signals, "actions": self.actions, "streams": self.streams,
            "scopes": self.scopes, "full_toxicity": self.full_toxicity,
            "toxicity": rng(self.toxicity), "triggered": self.triggered,
            "triggers": self.triggers, "metrics": {m: rng(r) for m, r in self.metrics.items()},
            "attributes": {t: {a: rng(r) for a, r in attrs.items()}
                           for t, attrs in self.attributes.items() if t in self.toxics},
            "window": rng(self.window), "pause": rng(self.pause),
            "restart_after": rng(self.restart_after),
            "restart_share": self.restart_share, "settle": self.settle,
            "slos": list(self.slos), "invariants": self.invariants,
        }
