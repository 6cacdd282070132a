"""The second pass over a scenario: what depends on the system it drills.

Hop, service and action names, the load's operations and params, the invariants and the
target only mean something for one system; its :class:`~faultline.system.SystemProfile`
says which exist. Problems are reported like the model's, one per line with its field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from faultline.system import ProfileError, SystemProfile, load_profile

from ._load import ScenarioProblem
from ._model import Scenario, ToxicFault

__all__ = ["check_against_profile"]

#: toxics that only make sense on a hop that speaks HTTP
HTTP_ONLY = frozenset({"http_error"})


def _names(items: Any) -> str:
    return ", ".join(items) or "none"


def _fault_names(profile: SystemProfile, faults: list[tuple[str, str, str, str | None]]
                 ) -> list[ScenarioProblem]:
    """Problems with the names of faults given as ``(where, kind, target, toxic)``."""
    problems: list[ScenarioProblem] = []
    hops = {h.name: h for h in profile.hops}
    services = {s.name: s for s in profile.services}
    for where, kind, target, toxic in faults:
        if kind == "toxic":
            hop = hops.get(target)
            if hop is None:
                problems.append(ScenarioProblem(f"{where}.hop", f"unknown hop {target!r} of "
                                                f"system {profile.name}; expected one of: "
                                                f"{_names(hops)}"))
            elif toxic in HTTP_ONLY and hop.protocol != "http":
                problems.append(ScenarioProblem(f"{where}.toxic", f"{toxic} needs a hop that "
                                                f"speaks HTTP; {hop.name} speaks {hop.protocol}"))
        elif kind == "action":
            if target not in profile.actions:
                problems.append(ScenarioProblem(f"{where}.action", f"unknown action {target!r} "
                                                f"of system {profile.name}; expected one of: "
                                                f"{_names(profile.actions)}"))
        else:
            service = services.get(target)
            if service is None:
                problems.append(ScenarioProblem(f"{where}.{kind}", f"unknown service {target!r} "
                                                f"of system {profile.name}; expected one of: "
                                                f"{_names(services)}"))
            elif kind not in service.faults:
                problems.append(ScenarioProblem(f"{where}.{kind}", f"{service.name} cannot take "
                                                f"a {kind} fault (it takes: "
                                                f"{_names(service.faults)})"))
    return problems


def check_raw_names(data: Any, profile: SystemProfile | None = None,
                    near: Path | None = None) -> list[ScenarioProblem]:
    """The name problems of a scenario's raw faults, for a file the model rejected (so
    that one run of ``faultline validate`` lists every problem, not half of them)."""
    if not isinstance(data, dict) or not isinstance(data.get("faults"), list):
        return []
    if profile is None:
        try:
            profile = load_profile(data.get("system") if isinstance(data.get("system"), str)
                                   else None, near=near)
        except ProfileError:
            return []
    found: list[tuple[str, str, str, str | None]] = []
    for i, fault in enumerate(data["faults"]):
        if not isinstance(fault, dict):
            continue
        kinds = [k for k in ("toxic", "kill", "pause", "restart", "action") if k in fault]
        if len(kinds) != 1:
            continue
        kind = kinds[0]
        target = fault.get("hop") if kind == "toxic" else fault.get(kind)
        if isinstance(target, str):
            toxic = fault.get("toxic") if kind == "toxic" else None
            found.append((f"faults[{i}]", kind, target, toxic if isinstance(toxic, str) else None))
    return _fault_names(profile, found)


def check_against_profile(scn: Scenario, profile: SystemProfile | None = None,
                          near: Path | None = None) -> tuple[Scenario, list[ScenarioProblem]]:
    """``scn`` with its system-dependent defaults resolved (mix, invariants), and every
    problem found against the profile (empty when it fits the system)."""
    if profile is None:
        try:
            profile = load_profile(scn.system, near=near)
        except ProfileError as exc:
            return scn, [ScenarioProblem("system", str(exc))]
    problems = _fault_names(profile, [
        (f"faults[{i}]", f.kind, f.target, f.toxic if isinstance(f, ToxicFault) else None)
        for i, f in enumerate(scn.faults)])
    for i, fault in enumerate(scn.faults):
        where = f"faults[{i}]"
        trigger = fault.when
        if (trigger is not None and trigger.metric is not None
                and trigger.metric not in profile.metrics
                and not (profile.metric_prefix
                         and trigger.metric.startswith(profile.metric_prefix))):
            problems.append(ScenarioProblem(f"{where}.when.metric", f"unknown metric "
                                            f"{trigger.metric!r}; expected one of "
                                            f"{_names(profile.metrics)} or a raw metric "
                                            f"name ({profile.metric_prefix}...)"))
    workload = profile.workload
    mix = scn.load.mix if scn.load.mix is not None else dict(workload.operations)
    unknown_ops = [op for op in mix if op not in workload.operations]
    if unknown_ops:
        problems.append(ScenarioProblem("load.mix", f"unknown operation {unknown_ops[0]!r} of "
                                        f"system {profile.name}; expected any of: "
                                        f"{_names(workload.operations)}"))
    params: dict[str, Any] = dict(scn.load.params)
    if workload.validate_params is not None:
        try:
            params = dict(workload.validate_params(params))
        except ValueError as exc:
            problems.append(ScenarioProblem("load.params", str(exc)))
    elif params:
        problems.append(ScenarioProblem("load.params", f"the {profile.name} workload takes "
                                        "no params"))
    invariants = list(profile.invariants) if scn.invariants is None else list(scn.invariants)
    foreign = [n for n in invariants if n not in profile.invariants]
    if foreign:
        problems.append(ScenarioProblem("invariants", f"{foreign[0]!r} does not apply to "
                                        f"system {profile.name}; its invariants: "
                                        f"{_names(profile.invariants)}"))
    if scn.stack not in profile.targets:
        problems.append(ScenarioProblem("stack", f"system {profile.name} cannot run on "
                                        f"{scn.stack!r}; it supports: "
                                        f"{_names(profile.targets)}"))
    if problems:
        return scn, problems
    load = scn.load.model_copy(update={"mix": mix, "params": params})
    return scn.model_copy(update={"load": load, "invariants": invariants}), []
