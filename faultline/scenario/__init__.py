"""Scenario files: the validated model of one drill and its loader.

API summary::

    from faultline.scenario import load_scenario, validate_paths, ScenarioError
    scn = load_scenario("scenarios/lost-ack.yaml")   # raises ScenarioError (str = message)
    scn.name, scn.system, scn.seed, scn.stack, scn.settle, scn.invariants, scn.alert_rules
    scn.load.profile, .users, .effective_spawn_rate, .duration (s), .rate, .mix, .params
    for f in scn.faults:     # ToxicFault | KillFault | PauseFault | RestartFault | ActionFault
        f.kind, f.target, f.at, f.end (s or None = end of load), f.label, f.when,
        f.expect_effect
        # toxic: f.hop, f.toxic, f.stream, f.toxicity, f.scope, f.attributes
        # kill: f.service, f.signal, f.restart_after; pause/restart: f.service
        # action: f.action (one of the system profile's actions)
    errors = validate_paths(["scenarios/"])  # list[ScenarioError], empty when all valid

A loaded scenario has been checked against its system's profile: its hops, services,
actions, operations and invariants exist there, and ``load.mix``/``invariants`` are
filled with the system's defaults.

Durations are float seconds everywhere (``parse_duration("1m30s") == 90.0``).
"""

from __future__ import annotations

from ._duration import Duration, format_duration, parse_duration
from ._load import (
    ScenarioError,
    ScenarioProblem,
    load_scenario,
    parse_scenario,
    scenario_files,
    validate_paths,
)
from ._model import (
    PROFILES,
    SIGNALS,
    ActionFault,
    Bound,
    ExpectedAlert,
    Fault,
    KillFault,
    LoadSpec,
    PauseFault,
    RestartFault,
    Scenario,
    SLOSpec,
    SpikeSpec,
    ToxicFault,
    Trigger,
)
from ._toxics import TOXIC_ATTRIBUTES, TOXIC_TYPES

__all__ = [
    "PROFILES",
    "SIGNALS",
    "TOXIC_ATTRIBUTES",
    "TOXIC_TYPES",
    "ActionFault",
    "Bound",
    "Duration",
    "ExpectedAlert",
    "Fault",
    "KillFault",
    "LoadSpec",
    "PauseFault",
    "RestartFault",
    "SLOSpec",
    "Scenario",
    "ScenarioError",
    "ScenarioProblem",
    "SpikeSpec",
    "ToxicFault",
    "Trigger",
    "format_duration",
    "load_scenario",
    "parse_duration",
    "parse_scenario",
    "scenario_files",
    "validate_paths",
]
