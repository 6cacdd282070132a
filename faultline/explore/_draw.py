"""The schedule generator: seeded drills drawn from a :class:`FaultSpace`.

Drill ``i`` of seed ``S`` is drawn by its own generator seeded from ``(S, i)``, so it is
the same drill whatever came before it, on any machine; its scenario seed (which drives
the load's choices and the fault proxy's rolls when the engine replays it) is derived
the same way. A drill is a load — profile, users, duration, maybe a spike and a redrawn
operation mix — and one to three fault items, each a single fault (a toxic, a kill, a
pause, a restart, an action; sometimes started by a trigger) or an incident pattern of
several. Items overlap freely: that is what real incidents do.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from ._atoms import READY_MARGIN, draw_fault, draw_load, draw_trigger
from ._patterns import PATTERNS
from ._render import describe_fault, fault_label, render_scenario, slug
from ._seeds import derive_seed
from ._space import FaultSpace, pick

__all__ = ["Drill", "DrillGenerator", "describe_load", "without_conflicts"]

#: the longest scenario name the model takes is 120 characters
_NAME_ROOM = 100
_PROCESS_KINDS = ("kill", "pause", "restart")


def _process_window(fault: dict[str, Any], duration: float, *, margin: float = READY_MARGIN,
                    kinds: tuple[str, ...] = _PROCESS_KINDS) -> tuple[str, float, float] | None:
    """``(service, from, to)``: while a process fault of ``kinds`` has the service down
    or frozen (a kill without restart: to the end of the load; a restarted service
    counts as back ``margin`` seconds after it started again); None for other faults
    and for triggered ones (their start is not known when drawing)."""
    kind = next((k for k in kinds if k in fault), None)
    if kind is None or "when" in fault:
        return None
    at = float(fault["at"])
    if kind == "pause":
        end = at + float(fault["for"])
    elif kind == "kill":
        after = fault.get("restart_after")
        end = at + float(after) + margin if after is not None else duration + 1
    else:
        end = at + margin
    return str(fault[kind]), at, end


def without_conflicts(faults: list[dict[str, Any]], duration: float,
                      sources: dict[str, tuple[str, ...]] | None = None
                      ) -> list[dict[str, Any]]:
    """``faults`` (sorted by ``at``) less every process fault that would start while an
    earlier one holds the same service down or frozen: a signal to a process that is
    not there, or a second SIGSTOP, touches nothing and would only make the drill
    vacuous (the first exploration on the correct stack drew such a drill). With
    ``sources`` (hop -> the services that talk through it), also less every toxic whose
    whole window falls while every service talking through its hop is dead or frozen:
    a hop nobody sends on carries nothing to slow or cut (the second exploration of the
    correct stack drew four such drills, all vacuous)."""
    busy: dict[str, float] = {}
    held: dict[str, list[tuple[float, float]]] = {}
    kept = []
    for fault in faults:
        window = _process_window(fault, duration)
        if window is not None:
            service, start, end = window
            if start < busy.get(service, float("-inf")):
                continue
            busy[service] = end
        hop = fault.get("hop")
        if sources is not None and hop in sources and "when" not in fault:
            at = float(fault["at"])
            end = at + float(fault.get("for", 0))
            if sources[hop] and all(any(a <= at and end <= b for a, b in held.get(s, ()))
                                    for s in sources[hop]):
                continue
        # surely silent: frozen, or dead until its restart (no readiness margin: it may
        # talk again as soon as it is back)
        hold = _process_window(fault, duration, margin=0.0, kinds=("kill", "pause"))
        if hold is not None:
            held.setdefault(hold[0], []).append(hold[1:])
        kept.append(fault)
    return kept


@dataclass(frozen=True)
class Drill:
    """One drawn (or shrunk) drill: ``data`` is the scenario mapping, ``items`` what was
    drawn (``toxic``, ``kill``, ..., ``pattern:<name>``), ``header`` the comment lines
    written on top of its file."""

    index: int
    data: dict[str, Any]
    items: tuple[str, ...] = ()
    header: tuple[str, ...] = field(default=())

    @property
    def name(self) -> str:
        return str(self.data["name"])

    @property
    def seed(self) -> int:
        return int(self.data["seed"])

    @property
    def faults(self) -> list[dict[str, Any]]:
        return list(self.data.get("faults") or [])

    def text(self) -> str:
        """The scenario file."""
        return render_scenario(self.data, header=self.header)


def describe_load(load: dict[str, Any]) -> str:
    """The load in words."""
    text = f"{load['profile']} load of {load['users']} users for {load['duration']:g}s"
    if "spike" in load:
        spike = load["spike"]
        text += (f", x{spike.get('multiplier', 3)} from {spike['at']:g}s for "
                 f"{spike['for']:g}s")
    if "mix" in load:
        text += ", mix " + ", ".join(f"{op} {w:g}" for op, w in load["mix"].items())
    return text


class DrillGenerator:
    """Draws drills from ``space`` under exploration seed ``seed``.

    ``stack`` and ``system`` are written into every scenario, so that a drawn file
    replays on its own (``faultline run drills/003-....yaml``).
    """

    def __init__(self, space: FaultSpace, seed: int, *, stack: str = "local",
                 system: str | None = None) -> None:
        if space.is_empty():
            raise ValueError("the fault space is empty: nothing to draw")
        self.space = space
        self.seed = seed
        self.stack = stack
        self.system = system
        #: hop -> the services that talk through it (its source, by name or by role)
        self.sources = {h.name: tuple(s.name for s in space.profile.services
                                      if h.source in (s.name, s.role))
                        for h in space.profile.hops}

    def draw(self, index: int) -> Drill:
        """Drill number ``index`` (from 1)."""
        space = self.space
        rng = random.Random(derive_seed("draw", self.seed, index))
        load = draw_load(rng, space)
        duration = float(load["duration"])
        faults: list[dict[str, Any]] = []
        items: list[str] = []
        labels: list[str] = []
        for _ in range(pick(rng, space.count)):
            kind = pick(rng, space.kinds)
            if kind == "pattern":
                name = pick(rng, space.patterns)
                label, drawn = PATTERNS[name].draw(rng, space, load)
                faults += drawn
                items.append(f"pattern:{name}")
                labels.append(label)
                continue
            fault = draw_fault(rng, space, kind, duration)
            if rng.random() < space.triggered and space.triggers:
                fault["when"] = draw_trigger(rng, space, load)
                fault.pop("until", None)
            faults.append(fault)
            items.append(kind + (":when" if "when" in fault else ""))
            labels.append(fault_label(fault))
        faults.sort(key=lambda f: float(f["at"]))
        faults = without_conflicts(faults, duration, self.sources)
        name = f"explore-{index:03d}-{slug('.'.join(labels))}"[:_NAME_ROOM].rstrip("-.")
        data: dict[str, Any] = {
            "name": name,
            "description": (f"Drawn by faultline explore --seed {self.seed} (drill {index}): "
                            f"{describe_load(load)}; "
                            + "; ".join(describe_fault(f) for f in faults) + "."),
            "seed": derive_seed("seed", self.seed, index),
            "load": load,
            "faults": faults,
            "settle": space.settle,
        }
        if self.system:
            data["system"] = self.system
        if self.stack != "local":
            data["stack"] = self.stack
        if space.slos:
            data["slos"] = [dict(s) for s in space.slos]
        if space.invariants is not None:
            data["invariants"] = list(space.invariants)
        header = (f"drawn by: faultline explore --seed {self.seed} (drill {index}: "
                  f"{', '.join(items)})",)
        return Drill(index=index, data=data, items=tuple(items), header=header)
