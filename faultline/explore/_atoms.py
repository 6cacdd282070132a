"""Drawing single faults and loads from a :class:`FaultSpace`.

A drawn fault is the plain mapping a scenario file holds (``{"at": 3.0, "for": 6.0,
"hop": "api->postgres", "toxic": "latency", "latency": 200}``): seconds as floats,
toxic attributes flat, keys left out where the scenario's default is meant. The
generator and the incident patterns build drills from these; the shrinker edits them.
Values are rounded to what a person would write (0.5 s steps, two significant digits),
so that a drawn drill reads like a hand-written one.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import Any

from faultline.scenario import TOXIC_ATTRIBUTES
from faultline.scenario._toxics import CONNECTION_ONLY

from ._space import HTTP_STATUSES, FaultSpace, Range, pick

__all__ = ["draw_action", "draw_fault", "draw_kill", "draw_load", "draw_pause",
           "draw_restart", "draw_toxic", "draw_trigger", "nice", "seconds", "window"]

#: the earliest a fault starts (the load needs a moment to reach its users)
LEAD = 1.0
#: a windowed fault heals at least this long before the load ends (an ``after`` phase)
TAIL = 1.0

#: seconds a restarted service needs before a signal to it means anything (its start
#: and readiness: about 0.3 s for the payments api on 2 cores, more under load)
READY_MARGIN = 1.0


def seconds(x: float) -> float:
    """A time as a person writes it: 0.5 s steps from 2 s on, 0.1 s steps below."""
    return max(0.1, round(x * 2) / 2 if x >= 2 else round(x, 1))


def nice(x: float) -> float:
    """``x`` with two significant digits (an int from 10 on)."""
    if x <= 0:
        return 0
    digits = 1 - math.floor(math.log10(abs(x)))
    value = round(x, digits)
    return int(value) if value >= 10 or value == int(value) else value


def window(rng: random.Random, space: FaultSpace, duration: float,
           length: Range | None = None, *, earliest: float = LEAD) -> tuple[float, float]:
    """``(at, for)`` of a fault inside a load of ``duration`` seconds: it starts within
    the first 60 % and heals :data:`TAIL` before the end."""
    latest = max(earliest, 0.6 * duration)
    at = seconds(rng.uniform(earliest, latest))
    room = max(0.5, duration - TAIL - at)
    span = (length or space.window).draw(rng)
    return at, seconds(min(span, room))


def _attributes(rng: random.Random, space: FaultSpace, toxic: str) -> dict[str, Any]:
    ranges = space.attributes.get(toxic, {})
    out: dict[str, Any] = {}
    for name, info in TOXIC_ATTRIBUTES[toxic].model_fields.items():
        spread = ranges.get(name)
        if spread is None or (not info.is_required() and rng.random() < 0.3):
            continue  # left to the toxic's own default now and then
        if toxic == "http_error" and name == "status":
            statuses = [s for s in HTTP_STATUSES if spread.low <= s <= spread.high]
            out[name] = rng.choice(statuses or [int(spread.low)])
            continue
        out[name] = int(nice(spread.draw(rng)))
    if toxic == "latency" and "jitter" in out:
        out["jitter"] = min(out["jitter"], out["latency"])
    if toxic == "slicer" and "size_variation" in out:
        out["size_variation"] = min(out["size_variation"], out["average_size"] - 1)
    return out


def draw_toxic(rng: random.Random, space: FaultSpace, duration: float, *,
               hop: str | None = None, toxic: str | None = None,
               at: float | None = None, length: float | None = None) -> dict[str, Any]:
    """A toxic on a hop (both chosen jointly by weight unless given)."""
    if hop is None:
        pairs = {(h, t): space.hops[h] * w for h in space.hops
                 for t, w in space.toxics_for(h).items() if toxic is None or t == toxic}
        hop, toxic = pick(rng, pairs)
    elif toxic is None:
        toxic = pick(rng, space.toxics_for(hop))
    if at is None or length is None:
        at, length = window(rng, space, duration)
    fault: dict[str, Any] = {"at": at, "for": length, "hop": hop, "toxic": toxic}
    if toxic == "down":  # the hop's proxy disabled: no stream, toxicity or attributes
        return fault
    fault.update(_attributes(rng, space, toxic))
    if rng.random() >= space.full_toxicity:
        fault["toxicity"] = round(space.toxicity.draw(rng), 2)
    stream = pick(rng, space.streams)
    if stream != "downstream":
        fault["stream"] = stream
    scopes = {s: w for s, w in space.scopes.items()
              if not (s == "exchange" and toxic in CONNECTION_ONLY)}
    scope = pick(rng, scopes) if scopes else "default"
    if scope != "default":
        fault["scope"] = scope
    return fault


def draw_kill(rng: random.Random, space: FaultSpace, duration: float, *,
              service: str | None = None, at: float | None = None) -> dict[str, Any]:
    """A signal to a service, restarted ``restart_after`` later (most of the time)."""
    service = service or pick(rng, space.services_taking("kill"))
    if at is None:
        at, _ = window(rng, space, duration)
    fault: dict[str, Any] = {"at": at, "kill": service, "signal": pick(rng, space.signals)}
    if rng.random() < space.restart_share:
        fault["restart_after"] = seconds(space.restart_after.draw(rng))
    return fault


def draw_pause(rng: random.Random, space: FaultSpace, duration: float, *,
               service: str | None = None, at: float | None = None,
               length: float | None = None) -> dict[str, Any]:
    """A service frozen (SIGSTOP) for a window."""
    service = service or pick(rng, space.services_taking("pause"))
    if at is None or length is None:
        at, length = window(rng, space, duration, space.pause)
    return {"at": at, "for": length, "pause": service}


def draw_restart(rng: random.Random, space: FaultSpace, duration: float, *,
                 service: str | None = None, at: float | None = None) -> dict[str, Any]:
    """A graceful restart of a service."""
    service = service or pick(rng, space.services_taking("restart"))
    if at is None:
        at, _ = window(rng, space, duration)
    return {"at": at, "restart": service}


def draw_action(rng: random.Random, space: FaultSpace, duration: float, *,
                action: str | None = None, at: float | None = None,
                length: float | None = None) -> dict[str, Any]:
    """One of the system's own faults, for a window."""
    action = action or pick(rng, space.actions)
    if at is None or length is None:
        at, length = window(rng, space, duration)
    return {"at": at, "for": length, "action": action}


_DRAW: dict[str, Callable[..., dict[str, Any]]] = {"toxic": draw_toxic, "kill": draw_kill, "pause": draw_pause,
         "restart": draw_restart, "action": draw_action}


def draw_fault(rng: random.Random, space: FaultSpace, kind: str, duration: float,
               **given: Any) -> dict[str, Any]:
    """A fault of ``kind`` (``toxic``, ``kill``, ``pause``, ``restart``, ``action``)."""
    fault: dict[str, Any] = _DRAW[kind](rng, space, duration, **given)
    return fault


def draw_trigger(rng: random.Random, space: FaultSpace, load: dict[str, Any],
                 kind: str | None = None) -> dict[str, Any]:
    """A ``when:`` condition: after some completed operations, or a metric above a
    threshold drawn from the space (low in its range, so that it is reached)."""
    kind = kind or pick(rng, space.triggers)
    if kind == "operations":
        expected = load["users"] * space.ops_per_user * load["duration"]
        return {"operations": max(1, int(nice(rng.uniform(0.05, 0.4) * expected)))}
    metric = pick(rng, {m: 1.0 for m in space.metrics})
    spread = space.metrics[metric]
    # the low quarter of the range: a bound the system reaches when something is wrong
    above = nice(Range(spread.low, spread.low + (spread.high - spread.low) / 4,
                       spread.log).draw(rng))
    return {"metric": metric, "above": round(above) if spread.low >= 1 else above}


def draw_load(rng: random.Random, space: FaultSpace) -> dict[str, Any]:
    """A load: profile, users, duration, maybe a spike, maybe a redrawn operation mix
    and the workload params the space names."""
    ls = space.load
    profile = pick(rng, ls.profiles)
    duration = float(round(ls.duration.draw(rng)))
    load: dict[str, Any] = {"profile": profile, "users": max(1, round(ls.users.draw(rng))),
                            "duration": duration}
    if profile == "spike":
        load["spike"] = {"at": seconds(rng.uniform(0.2, 0.5) * duration),
                         "for": seconds(rng.uniform(0.2, 0.4) * duration),
                         "multiplier": round(ls.spike_multiplier.draw(rng), 1)}
    if rng.random() < ls.random_mix:
        ops = dict(space.profile.workload.operations)
        mix = {op: nice(w * rng.choice((0.0, 0.25, 0.5, 1.0, 2.0, 4.0))) for op, w in ops.items()}
        if not any(mix.values()):
            first = next(iter(ops))
            mix[first] = nice(ops[first])
        load["mix"] = mix
    if ls.params:
        load["params"] = {name: round(r.draw(rng), 3) for name, r in ls.params.items()}
    return load
