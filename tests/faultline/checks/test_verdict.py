"""The exit-code enum, the verdict's precedence step by step, vacuous drills, and the
exit code of an invocation that ran several drills."""

from __future__ import annotations

import json
from typing import Any

import pytest

from faultline.checks import (
    EXIT_HARNESS_ERROR,
    EXIT_INVARIANT_VIOLATED,
    CheckResult,
    ExitCode,
    Verdict,
    invocation_exit_code,
    vacuous_faults,
    verdict,
)


def r(name: str, valid: Any, kind: str = "invariant") -> CheckResult:
    return CheckResult(name=name, valid=valid, kind=kind)


IDLE = {"name": "latency@api->postgres", "effect": {"connections": 0, "bytes_delayed": 0}}
BUSY = {"name": "kill worker-1", "effect": {"processes_signalled": 1}}


def test_exit_codes_and_statuses() -> None:
    assert [int(c) for c in ExitCode] == [0, 1, 2, 3, 4, 5]
    assert ExitCode.VACUOUS.status == "vacuous"
    assert ExitCode.HELD.status == "held"
    assert EXIT_INVARIANT_VIOLATED is ExitCode.INVARIANT_VIOLATED
    assert EXIT_HARNESS_ERROR == 4


# each row: the situation one step up the precedence wins over everything below it
PRECEDENCE: list[tuple[str, list[CheckResult], dict[str, Any], ExitCode]] = [
    ("harness error beats a violated invariant",
     [r("a", False)], {"harness_error": "proxy died", "faults": [IDLE]}, ExitCode.HARNESS_ERROR),
    ("a violated invariant beats a failed steady state",
     [r("a", False), r("s", False, "slo")], {"steady_state_ok": False}, ExitCode.INVARIANT_VIOLATED),
    ("a violation in the steady-state probe is a violation",
     [r("a", True)], {"steady_state_ok": False, "steady_state_results": [r("a", False)]},
     ExitCode.INVARIANT_VIOLATED),
    ("a failed steady state beats a missed SLO",
     [r("a", True), r("s", False, "slo")], {"steady_state_ok": False}, ExitCode.STEADY_STATE_FAILED),
    ("a missed SLO beats an unknown",
     [r("a", True), r("b", "unknown"), r("s", False, "slo")], {}, ExitCode.SLO_MISSED),
    ("an unknown beats vacuous",
     [r("a", True), r("b", "unknown")], {"faults": [IDLE]}, ExitCode.HARNESS_ERROR),
    ("an expected check without a result beats vacuous",
     [r("a", True)], {"expected": ["a", "b"], "faults": [IDLE]}, ExitCode.HARNESS_ERROR),
    ("nothing checked is a harness error", [], {"faults": [IDLE]}, ExitCode.HARNESS_ERROR),
    ("vacuous beats held", [r("a", True)], {"faults": [BUSY, IDLE]}, ExitCode.VACUOUS),
    ("held", [r("a", True), r("s", True, "slo")], {"faults": [BUSY]}, ExitCode.HELD),
]


@pytest.mark.parametrize(("why", "results", "kwargs", "code"), PRECEDENCE, ids=[p[0] for p in PRECEDENCE])
def test_precedence(why: str, results: list[CheckResult], kwargs: dict[str, Any], code: ExitCode) -> None:
    v = verdict(results, **kwargs)
    assert v.exit_code == code, v.reason
    assert v.status == code.status
    assert v.reason


@pytest.mark.parametrize(
    ("effect", "vacuous"),
    [
        ({"connections": 0}, True),
        ({}, True),
        (None, True),
        ("unknown", True),
        ({"cut": {"up": 0, "down": 0}}, True),
        ({"cut": {"up": 0, "down": 2}}, False),
        ({"delayed_bytes": 0.5}, False),
        ({"fired": True}, False),
    ],
)
def test_which_effects_count_as_none(effect: Any, vacuous: bool) -> None:
    assert vacuous_faults([{"name": "f", "effect": effect}]) == (["f"] if vacuous else [])


def test_a_fault_that_expects_no_effect_is_never_vacuous() -> None:
    assert vacuous_faults([{"name": "f", "effect": {"n": 0}, "expect_effect": False}]) == []
    v = verdict([r("a", True)], faults=[{"name": "f", "effect": {}, "expect_effect": False}])
    assert v.exit_code == ExitCode.HELD


def test_vacuous_verdict_still_reports_every_invariant() -> None:
    v = verdict([r("a", True), r("b", True)], faults=[IDLE], expected=["a", "b"])
    assert v.exit_code == 5
    assert "latency@api->postgres" in v.reason
    assert [x.name for x in v.results] == ["a", "b"]


def test_the_idle_one_of_faults_with_one_name_is_told_apart() -> None:
    """A flapping hop is cut three times under one name; the reason names the cut that
    touched nothing by its start and its own status (it said "(fired)", the status of
    another cut, before)."""
    cuts = [{"name": "down@api->postgres", "start_s": 6.5, "status": "fired",
             "effect": {"connections_cut": 14}},
            {"name": "down@api->postgres", "start_s": 7.52, "status": "no_effect",
             "effect": {"connections_cut": 0}},
            {"name": "down@api->postgres", "start_s": 9.0, "status": "fired",
             "effect": {"connections_cut": 2}},
            {"name": "kill api", "status": "skipped", "effect": {}}]
    v = verdict([r("a", True)], faults=cuts)
    assert v.exit_code == ExitCode.VACUOUS
    assert v.reason == ("vacuous: a fault never touched the system: "
                        "down@api->postgres at 7.5s (no effect), kill api (skipped)")


def test_faults_are_in_the_json_and_round_trip() -> None:
    fault = {"name": "x", "effect": {"n": 3, "hops": ("a", "b")}, "expect_effect": True}
    v = verdict([r("a", True)], faults=[fault], steady_state_results=[r("a", True)])
    data = json.loads(json.dumps(v.to_dict()))
    assert data["faults"] == [{"name": "x", "effect": {"n": 3, "hops": ["a", "b"]}, "expect_effect": True}]
    again = Verdict.from_dict(data)
    assert again.faults == data["faults"]
    assert [x.name for x in again.steady_state] == ["a"]
    assert again.exit_code == ExitCode.HELD


@pytest.mark.parametrize(
    ("codes", "expected"),
    [
        ([0, 0], ExitCode.HELD),
        ([0, 5], ExitCode.VACUOUS),
        ([5, 2], ExitCode.SLO_MISSED),
        ([2, 3, 0], ExitCode.STEADY_STATE_FAILED),
        ([3, 1, 2], ExitCode.INVARIANT_VIOLATED),
        ([1, 4], ExitCode.HARNESS_ERROR),
        ([0, 99], ExitCode.HARNESS_ERROR),
        ([], ExitCode.HARNESS_ERROR),
    ],
)
def test_invocation_exit_code(codes: list[int], expected: ExitCode) -> None:
    assert invocation_exit_code(codes) == expected
