"""Incident patterns: the combinations of faults real outages are made of.

A single fault rarely explains an incident; it is a database that is slow *and* flaps,
a cache restarted while a worker is paused, a reset while a downstream service is slow.
Each pattern here is written over the profile's hops, services and roles — never over
names of one system — so that it applies to any system whose profile has the shape it
needs (``applies``), and the space grows with the profile. One pattern is one item of
a drawn drill; it yields several faults, which the shrinker may later take apart.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ._atoms import (
    READY_MARGIN,
    draw_fault,
    draw_kill,
    draw_pause,
    draw_toxic,
    draw_trigger,
    seconds,
    window,
)
from ._render import fault_label
from ._space import FaultSpace, Range, pick

__all__ = ["PATTERNS", "Pattern"]

Faults = list[dict[str, Any]]
#: faults that cut an exchange in the middle (what a reset or a failover does)
CUTS = ("reset_peer", "lost_ack", "down", "timeout", "limit_data")
#: faults that slow a hop down
SLOW = ("latency", "bandwidth", "slicer")


@dataclass(frozen=True)
class Pattern:
    """A named combination: ``applies(space)`` says whether the space has what it needs;
    ``draw(rng, space, load)`` returns ``(label, faults)``."""

    name: str
    description: str
    applies: Callable[[FaultSpace], bool]
    draw: Callable[[random.Random, FaultSpace, dict[str, Any]], tuple[str, Faults]]


def _slug(name: str) -> str:
    return name.replace("->", "-").replace(" ", "-")


def _hops_with(space: FaultSpace, toxics: tuple[str, ...], *, every: bool = False
               ) -> dict[str, float]:
    """Hops (with weights) that admit any (or ``every``) of ``toxics``."""
    test = all if every else any
    return {h: w for h, w in space.hops.items()
            if test(t in space.toxics_for(h) for t in toxics)}


# ---------------------------------------------------------------- slow and flapping


def _flapping_applies(space: FaultSpace) -> bool:
    return bool(_hops_with(space, ("latency", "down"), every=True))


def _flapping(rng: random.Random, space: FaultSpace, load: dict[str, Any]) -> tuple[str, Faults]:
    """A hop slowed for a while and cut two to four times inside that window (a primary
    that is overloaded while the cluster manager keeps failing over). The first cut
    must cut something; a later one may find nothing to cut — the clients backed off
    after the first (a breaker open, an empty pool) — which is the system coping, not a
    cut that missed: those say ``expect_effect: false``."""
    duration = load["duration"]
    hop = pick(rng, _hops_with(space, ("latency", "down"), every=True))
    at, span = window(rng, space, duration, Range(4.0, max(4.0, duration - 3)))
    slow = draw_toxic(rng, space, duration, hop=hop, toxic="latency", at=at, length=span)
    cuts = rng.randint(2, 4)
    faults = [slow]
    for i in range(cuts):
        start = at + span * (i + 0.5) / (cuts + 0.5)
        cut: dict[str, Any] = {"at": seconds(start), "for": seconds(rng.uniform(0.5, 1.2)),
                               "hop": hop, "toxic": "down"}
        if i > 0:
            cut["expect_effect"] = False
        faults.append(cut)
    return f"flapping-{_slug(hop)}", faults


# ---------------------------------------------------------------- restart while paused


def _pairs_paused_restarted(space: FaultSpace) -> list[tuple[str, str]]:
    paused = space.services_taking("pause")
    restarted = {**space.services_taking("kill"), **space.services_taking("restart")}
    return [(p, r) for p in paused for r in restarted if space.role(p) != space.role(r)]


def _paused_applies(space: FaultSpace) -> bool:
    return bool(_pairs_paused_restarted(space))


def _paused(rng: random.Random, space: FaultSpace, load: dict[str, Any]) -> tuple[str, Faults]:
    """A service of one role frozen while a service of another role is restarted (a
    cache restarted while a worker sits in a GC pause)."""
    duration = load["duration"]
    pairs = _pairs_paused_restarted(space)
    frozen, other = pairs[rng.randrange(len(pairs))]
    at, span = window(rng, space, duration, Range(3.0, 8.0))
    pause = draw_pause(rng, space, duration, service=frozen, at=at, length=span)
    when = seconds(at + span * rng.uniform(0.2, 0.6))
    kinds = [k for k in ("restart", "kill") if other in space.services_taking(k)]
    if rng.choice(kinds) == "restart":
        hit: dict[str, Any] = {"at": when, "restart": other}
    else:
        hit = draw_kill(rng, space, duration, service=other, at=when)
        hit["restart_after"] = seconds(rng.uniform(0.5, 2.0))
    return f"{hit.get('restart') or hit.get('kill')}-while-{frozen}-paused", [pause, hit]


# ---------------------------------------------------------------- reset while slow


def _reset_pairs(space: FaultSpace) -> list[tuple[str, str]]:
    cut = _hops_with(space, CUTS)
    slow = _hops_with(space, SLOW)
    return [(c, s) for c in cut for s in slow if c != s]


def _reset_applies(space: FaultSpace) -> bool:
    return bool(_reset_pairs(space))


def _reset(rng: random.Random, space: FaultSpace, load: dict[str, Any]) -> tuple[str, Faults]:
    """One hop cut (reset, lost reply, down) while another is slow (a failover reset
    while a downstream service crawls): retries and timeouts of two paths interleave."""
    duration = load["duration"]
    pairs = _reset_pairs(space)
    cut_hop, slow_hop = pairs[rng.randrange(len(pairs))]
    at, span = window(rng, space, duration, Range(4.0, max(4.0, duration - 3)))
    slow_toxic = pick(rng, {t: w for t, w in space.toxics_for(slow_hop).items() if t in SLOW})
    slow = draw_toxic(rng, space, duration, hop=slow_hop, toxic=slow_toxic, at=at, length=span)
    cut_toxic = pick(rng, {t: w for t, w in space.toxics_for(cut_hop).items() if t in CUTS})
    start = seconds(at + span * rng.uniform(0.2, 0.5))
    cut = draw_toxic(rng, space, duration, hop=cut_hop, toxic=cut_toxic, at=start,
                     length=seconds(min(rng.uniform(1.0, 4.0), at + span - start)))
    return f"{cut_toxic}-{_slug(cut_hop)}-while-{_slug(slow_hop)}-slow", [slow, cut]


# ---------------------------------------------------------------- process while slow


def _slowed_services(space: FaultSpace) -> dict[str, float]:
    out = {}
    for service, weight in space.services.items():
        faults = set(space.service_faults[service]) & {"kill", "pause"}
        hops = [h for h in space.outgoing(service) if "latency" in space.toxics_for(h)]
        if faults and hops:
            out[service] = weight
    return out


def _process_applies(space: FaultSpace) -> bool:
    return bool(_slowed_services(space))


def _process(rng: random.Random, space: FaultSpace, load: dict[str, Any]) -> tuple[str, Faults]:
    """The services of one role killed or frozen again and again while their own hops
    are slow, so that the faults land between reading work and finishing it (a worker
    OOM-killed mid-batch, a consumer paused past its claim timeout)."""
    duration = load["duration"]
    service = pick(rng, _slowed_services(space))
    role = space.role(service)
    hop = rng.choice([h for h in space.outgoing(service) if "latency" in space.toxics_for(h)])
    at, span = window(rng, space, duration, Range(5.0, max(5.0, duration - 2)),
                      earliest=0.5)
    slow = draw_toxic(rng, space, duration, hop=hop, toxic="latency", at=at, length=span)
    kind = rng.choice(sorted(set(space.service_faults[service]) & {"kill", "pause"}))
    siblings = [s for s in space.services_taking(kind) if space.role(s) == role]
    count = rng.randint(1, 4) if kind == "kill" else rng.randint(1, 2)
    # the same service comes round again every len(siblings) steps: it must be back (a
    # kill's restart and readiness) or resumed (a pause) by then, or the next fault
    # touches nothing
    need = 0.5 + READY_MARGIN if kind == "kill" else 1.0
    while count > len(siblings) and span / (count + 0.5) * len(siblings) < need:
        count -= 1
    faults = [slow]
    step = span / (count + 0.5)
    room = step * len(siblings) if count > len(siblings) else float("inf")
    for i in range(count):
        target = siblings[(siblings.index(service) + i) % len(siblings)]
        start = seconds(at + step * (i + 0.5))
        if kind == "kill":
            hit = draw_kill(rng, space, duration, service=target, at=start)
            hit["restart_after"] = seconds(rng.uniform(0.5, min(2.0, room - READY_MARGIN)))
        else:
            length = seconds(min(space.pause.draw(rng), max(0.5, duration - 1 - start),
                                 room - 0.5))
            hit = draw_pause(rng, space, duration, service=target, at=start, length=length)
        faults.append(hit)
    return f"{kind}-{role}-while-{_slug(hop)}-slow", faults


# ---------------------------------------------------------------- partition


def _partition_targets(space: FaultSpace) -> list[str]:
    targets = {h.target for h in space.profile.hops}
    return [t for t in sorted(targets)
            if len([h for h in space.incoming(t) if "down" in space.toxics_for(h)]) >= 2]


def _partition_applies(space: FaultSpace) -> bool:
    return bool(_partition_targets(space))


def _partition(rng: random.Random, space: FaultSpace, load: dict[str, Any]
               ) -> tuple[str, Faults]:
    """Every hop into one service down at once (the service unreachable from all its
    clients: a crashed instance, a security-group change)."""
    duration = load["duration"]
    target = rng.choice(_partition_targets(space))
    at, span = window(rng, space, duration)
    hops = [h for h in space.incoming(target) if "down" in space.toxics_for(h)]
    return (f"{_slug(target)}-unreachable",
            [{"at": at, "for": span, "hop": h, "toxic": "down"} for h in hops])


# ---------------------------------------------------------------- cascade


def _cascade_applies(space: FaultSpace) -> bool:
    return bool(space.metrics) and bool(space.toxic_pairs())


def _cascade(rng: random.Random, space: FaultSpace, load: dict[str, Any]) -> tuple[str, Faults]:
    """A fault, then a second one started by the state the first drives the system into
    (a metric crossing a bound): the trouble that comes while the system is already
    degraded."""
    duration = load["duration"]
    first = draw_toxic(rng, space, duration)
    kinds = {k: w for k, w in space.kinds.items() if k != "pattern"}
    kind = pick(rng, kinds)
    second = draw_fault(rng, space, kind, duration)
    second["at"] = first["at"]
    second["when"] = draw_trigger(rng, space, load, "metric")
    if "for" in second:
        second["for"] = seconds(min(second["for"], max(0.5, duration - 1 - first["at"])))
    return (f"{fault_label(first)}-then-{fault_label(second)}-when-{second['when']['metric']}",
            [first, second])


PATTERNS: dict[str, Pattern] = {p.name: p for p in (
    Pattern("slow_and_flapping", "a hop that is slow and flaps", _flapping_applies, _flapping),
    Pattern("restart_while_paused", "a service restarted while another role's is paused",
            _paused_applies, _paused),
    Pattern("reset_while_slow", "one hop cut while another is slow", _reset_applies, _reset),
    Pattern("process_while_slow", "a role's services killed or paused while their hops "
            "are slow", _process_applies, _process),
    Pattern("partition", "every hop into one service down at once", _partition_applies,
            _partition),
    Pattern("cascade", "a fault, then another started by the state it causes",
            _cascade_applies, _cascade),
)}
