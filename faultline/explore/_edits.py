"""The edits that make a failing drill smaller: shorter, then simpler.

Each edit is a pure function of a drill's scenario mapping that returns a smaller one
(or ``None`` when it does not apply); the shrinker decides which ones the failure
survives. Shorter: the load ends soon after the last fault heals, faults start early,
windows and restarts take half as long, half the users. Simpler: the steady profile and
the workload's own mix; per fault, toxicity 1 (a fault that always acts is easier to
reason about than one that rolls dice), the default direction and scope, optional
attributes dropped, milder values (half the latency, twice the bandwidth), the default
signal, and a triggered fault started at the time its trigger fired in the failing run.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from faultline.scenario import TOXIC_ATTRIBUTES

from ._atoms import LEAD, TAIL, nice, seconds

__all__ = ["MIN_LOAD", "Edit", "load_end", "shorten_edits", "simplify_edits"]

#: the shortest load a shrunk drill keeps (the steady state, a fault, a reaction)
MIN_LOAD = 4.0
#: the shortest fault window a shrunk drill keeps
MIN_WINDOW = 0.5
#: attributes whose milder value is smaller (halved down to the floor) or larger
#: (doubled up to the cap): (toxic, attribute) -> (direction, limit)
MILDER: dict[tuple[str, str], tuple[str, float]] = {
    ("latency", "latency"): ("down", 5),
    ("slow_close", "delay"): ("down", 10),
    ("connect_delay", "delay"): ("down", 10),
    ("bandwidth", "rate"): ("up", 4096),
    ("limit_data", "bytes"): ("up", 1 << 20),
}
Data = dict[str, Any]


@dataclass(frozen=True)
class Edit:
    """One way to make the drill smaller: ``what`` for the shrink log, ``apply``."""

    what: str
    apply: Callable[[Data], Data | None]


def _fault_end(fault: dict[str, Any]) -> float | None:
    """When a fault is over (seconds from load start); None when it is triggered."""
    if "when" in fault:
        return None
    at = float(fault["at"])
    if "for" in fault:
        return at + float(fault["for"])
    if "until" in fault:
        return float(fault["until"])
    if "restart_after" in fault:
        return at + float(fault["restart_after"])
    return at + 1.0  # a restart, or a kill that stays down: seen within a second


def load_end(data: Data) -> float | None:
    """The shortest load that still holds every fault (None: a triggered fault)."""
    ends = [_fault_end(f) for f in data.get("faults") or []]
    if any(e is None for e in ends):
        return None
    last = max((e for e in ends if e is not None), default=LEAD)
    return max(MIN_LOAD, float(math.ceil(last + TAIL)))


def _edit(data: Data, change: Callable[[Data], bool]) -> Data | None:
    out = copy.deepcopy(data)
    return out if change(out) else None


def _tight(data: Data) -> Data | None:
    def change(d: Data) -> bool:
        end = load_end(d)
        if end is None or end >= d["load"]["duration"]:
            return False
        d["load"]["duration"] = end
        return True
    return _edit(data, change)


def _earlier(data: Data) -> Data | None:
    def change(d: Data) -> bool:
        faults = d.get("faults") or []
        if not faults:
            return False
        shift = min(float(f["at"]) for f in faults) - LEAD
        if shift < 0.5:
            return False
        for f in faults:
            f["at"] = seconds(float(f["at"]) - shift)
            if "until" in f:
                f["until"] = seconds(float(f["until"]) - shift)
            if "when" in f and "deadline" in f["when"]:
                f["when"]["deadline"] = seconds(float(f["when"]["deadline"]) - shift)
        return _tight_in_place(d)
    return _edit(data, change)


def _tight_in_place(d: Data) -> bool:
    end = load_end(d)
    if end is not None and end < d["load"]["duration"]:
        d["load"]["duration"] = end
    return True


def _halve(index: int, key: str, bold: bool) -> Callable[[Data], Data | None]:
    def apply(data: Data) -> Data | None:
        def change(d: Data) -> bool:
            fault = d["faults"][index]
            if key not in fault or float(fault[key]) <= MIN_WINDOW:
                return False
            value = MIN_WINDOW if bold else float(fault[key]) / 2
            fault[key] = seconds(max(MIN_WINDOW, value))
            return True
        return _edit(data, change)
    return apply


def _fewer_users(bold: bool) -> Callable[[Data], Data | None]:
    def apply(data: Data) -> Data | None:
        def change(d: Data) -> bool:
            users = int(d["load"]["users"])
            if users <= 1:
                return False
            d["load"]["users"] = 1 if bold else max(1, users // 2)
            return True
        return _edit(data, change)
    return apply


def _half_load(data: Data) -> Data | None:
    def change(d: Data) -> bool:
        half = float(max(MIN_LOAD, math.ceil(float(d["load"]["duration"]) / 2)))
        end = load_end(d)
        if half >= d["load"]["duration"] or end is None or end > half:
            return False
        d["load"]["duration"] = half
        return True
    return _edit(data, change)


def shorten_edits(data: Data, *, bold: bool = False) -> list[Edit]:
    """Edits that make the drill take less time (or fewer users). ``bold`` jumps to the
    shortest at once (a first round); otherwise values are halved (later rounds)."""
    edits = []
    for i, fault in enumerate(data.get("faults") or []):
        for key in ("for", "restart_after"):
            if key in fault and float(fault[key]) > MIN_WINDOW:
                what = f"fault {i + 1}'s {key} {MIN_WINDOW:g}s" if bold else \
                    f"halve fault {i + 1}'s {key}"
                edits.append(Edit(what, _halve(i, key, bold)))
    edits.append(Edit("one user" if bold else "half the users", _fewer_users(bold)))
    if not bold:  # a drill that needs no fault, or time after it: half the load
        edits.append(Edit("half the load", _half_load))
    # last, so that they measure the windows as the edits above left them
    edits += [Edit("start the faults at 1s", _earlier),
              Edit("end the load soon after the last fault heals", _tight)]
    return edits


def _drop(path: Sequence[Any], what: str) -> Edit:
    """An edit that removes ``data[path...]`` (back to the scenario's default)."""
    def apply(data: Data) -> Data | None:
        def change(d: Data) -> bool:
            parent: Any = d
            for key in path[:-1]:
                parent = parent[key]
            if path[-1] not in parent:
                return False
            del parent[path[-1]]
            return True
        return _edit(data, change)
    return Edit(what, apply)


def _steady(data: Data) -> Data | None:
    def change(d: Data) -> bool:
        if d["load"].get("profile", "steady") == "steady":
            return False
        d["load"]["profile"] = "steady"
        d["load"].pop("spike", None)
        return True
    return _edit(data, change)


def _set(index: int, key: str, value: Any) -> Callable[[Data], Data | None]:
    def apply(data: Data) -> Data | None:
        def change(d: Data) -> bool:
            fault = d["faults"][index]
            if fault.get(key) == value:
                return False
            fault[key] = value
            return True
        return _edit(data, change)
    return apply


def _fixed_start(index: int, started: float) -> Callable[[Data], Data | None]:
    def apply(data: Data) -> Data | None:
        def change(d: Data) -> bool:
            fault = d["faults"][index]
            if "when" not in fault:
                return False
            del fault["when"]
            fault["at"] = seconds(max(float(fault["at"]), started))
            return bool(fault["at"] < d["load"]["duration"])
        return _edit(data, change)
    return apply


def simplify_edits(data: Data, started: Sequence[float | None] = (), *,
                   bold: bool = False) -> list[Edit]:
    """Edits that make the drill simpler to read; ``started`` are the seconds at which
    each fault really started in the last failing run (for triggered faults); ``bold``
    jumps to the mildest values at once."""
    load = data["load"]
    edits = [Edit("steady load", _steady)] if load.get("profile", "steady") != "steady" else []
    if "mix" in load:
        edits.append(_drop(("load", "mix"), "the workload's own operation mix"))
    if "params" in load:
        edits.append(_drop(("load", "params"), "the workload's own params"))
    for i, fault in enumerate(data.get("faults") or []):
        n = i + 1
        if "when" in fault and i < len(started) and started[i] is not None:
            edits.append(Edit(f"start fault {n} at {started[i]:g}s instead of on its trigger",
                              _fixed_start(i, float(started[i] or 0))))
        if "toxic" in fault:
            edits += _toxic_edits(i, fault, bold)
        if fault.get("signal", "SIGKILL") != "SIGKILL":
            edits.append(_drop(("faults", i, "signal"), f"fault {n}: SIGKILL"))
    return edits


def _toxic_edits(i: int, fault: dict[str, Any], bold: bool) -> list[Edit]:
    n = i + 1
    edits = [_drop(("faults", i, "toxicity"), f"fault {n}: toxicity 1"),
             _drop(("faults", i, "stream"), f"fault {n}: downstream"),
             _drop(("faults", i, "scope"), f"fault {n}: the toxic's default scope")]
    toxic = str(fault["toxic"])
    model = TOXIC_ATTRIBUTES.get(toxic)
    for attr, info in (model.model_fields.items() if model is not None else ()):
        if attr not in fault:
            continue
        if not info.is_required():
            edits.append(_drop(("faults", i, attr), f"fault {n}: default {attr}"))
        rule = MILDER.get((toxic, attr))
        if rule is None:
            continue
        direction, limit = rule
        value = float(fault[attr])
        if bold:
            milder = limit
        else:
            milder = max(limit, value / 2) if direction == "down" else min(limit, value * 2)
        if milder != value:
            edits.append(Edit(f"fault {n}: {attr} {int(nice(milder))}",
                              _set(i, attr, int(nice(milder)))))
    return edits
