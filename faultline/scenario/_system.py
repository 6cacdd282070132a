"""The second pass over a scenario: what depends on the system it drills.

Hop, service and action names, the load's operations and params, the invariants and the
target only mean something for one system; its :class:`~faultline.system.SystemProfile`
says which exist. Problems are reported like the model's, one per line with its field.
"""

from __future__ import annotations

from typing import Any

from faultline.system import ProfileError, SystemProfile, load_profile

from ._load import ScenarioProblem
from ._model import ActionFault, Scenario, ToxicFault

__all__ = ["check_against_profile"]

#: toxics that only make sense on a hop that speaks HTTP
HTTP_ONLY = frozenset({"http_error"})


def _names(items: Any) -> str:
    return ", ".join(items) or "none"


def check_against_profile(scn: Scenario, profile: SystemProfile | None = None
                          ) -> tuple[Scenario, list[ScenarioProblem]]:
    """``scn`` with its system-dependent defaults resolved (mix, invariants), and every
    problem found against the profile (empty when it fits the system)."""
    if profile is None:
        try:
            profile = load_profile(scn.system)
        except ProfileError as exc:
            return scn, [ScenarioProblem("system", str(exc))]
    problems: list[ScenarioProblem] = []
    hops = {h.name: h for h in profile.hops}
    services = {s.name: s for s in profile.services}
    for i, fault in enumerate(scn.faults):
        where = f"faults[{i}]"
        if isinstance(fault, ToxicFault):
            hop = hops.get(fault.hop)
            if hop is None:
                problems.append(ScenarioProblem(f"{where}.hop", f"unknown hop {fault.hop!r} of "
                                                f"system {profile.name}; expected one of: "
                                                f"{_names(hops)}"))
            elif fault.toxic in HTTP_ONLY and hop.protocol != "http":
                problems.append(ScenarioProblem(f"{where}.toxic", f"{fault.toxic} needs a hop "
                                                f"that speaks HTTP; {hop.name} speaks "
                                                f"{hop.protocol}"))
        elif isinstance(fault, ActionFault):
            if fault.action not in profile.actions:
                problems.append(ScenarioProblem(f"{where}.action", f"unknown action "
                                                f"{fault.action!r} of system {profile.name}; "
                                                f"expected one of: {_names(profile.actions)}"))
        else:
            service = services.get(fault.target)
            if service is None:
                problems.append(ScenarioProblem(f"{where}.{fault.kind}", f"unknown service "
                                                f"{fault.target!r} of system {profile.name}; "
                                                f"expected one of: {_names(services)}"))
            elif fault.kind not in service.faults:
                problems.append(ScenarioProblem(f"{where}.{fault.kind}", f"{service.name} "
                                                f"cannot take a {fault.kind} fault (it takes: "
                                                f"{_names(service.faults)})"))
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
