"""Scenario files: the validated model of one drill and its loader.

API summary::

    from faultline.scenario import load_scenario, validate_paths, ScenarioError
    scn = load_scenario("scenarios/lost-ack.yaml")   # raises ScenarioError (str = message)
    scn.name, scn.seed, scn.stack, scn.settle, scn.invariants, scn.alert_rules
    scn.load.profile, .users, .effective_spawn_rate, .duration (s), .rate, .mix, .spike
    for f in scn.faults:                   # ToxicFault | KillFault | PauseFault | RestartFault
        f.kind, f.at, f.end (s or None = end of load), f.label
        # toxic: f.hop, f.proxy (proxy name), f.toxic, f.stream, f.toxicity, f.attributes
        # kill: f.service, f.signal, f.restart_after; pause/restart: f.service
    errors = validate_paths(["scenarios/"])  # list[ScenarioError], empty when all valid

Durations are float seconds everywhere (``parse_duration("1m30s") == 90.0``).
"""

from __future__ import annotations

from ._duration import Duration, format_duration, parse_duration
from ._load import ScenarioError, ScenarioProblem, load_scenario, parse_scenario, validate_paths
from ._model import (
    HOPS,
    OPERATIONS,
    PROFILES,
    SIGNALS,
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
)
from ._toxics import TOXIC_ATTRIBUTES, TOXIC_TYPES

__all__ = [
    "HOPS",
    "OPERATIONS",
    "PROFILES",
    "SIGNALS",
    "TOXIC_ATTRIBUTES",
    "TOXIC_TYPES",
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
    "format_duration",
    "load_scenario",
    "parse_duration",
    "parse_scenario",
    "validate_paths",
]
