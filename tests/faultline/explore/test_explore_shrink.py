"""The shrinker on synthetic failing predicates: deterministic, flaky, slipping.

A "drill run" here is a plain function of the candidate and its seed, so these tests
check the search itself: it reaches exactly the faults the failure needs, shortens and
simplifies what does not matter, never accepts a different failure, keeps within its
budget, tries the same candidates in the same order for the same outcomes, and — with
k tries — still reaches the minimal set when the failure shows only now and then.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable
from typing import Any

import pytest

from faultline.explore import Failure, Shrinker, Trial, try_seeds

SEED = 4242


def result(checker: str = "acknowledged_exactly_once", kind: str = "lost_ok",
           steady: bool = False) -> dict[str, Any]:
    name = checker + (" (steady state)" if steady else "")
    return {"name": name, "valid": False, "kind": "invariant",
            "errors": [{"type": kind, "count": 3}]}


TARGET = Failure.of(1, [result()])
assert TARGET is not None

FAULTS = [
    {"at": 2.0, "for": 6.0, "hop": "api->postgres", "toxic": "latency", "latency": 400,
     "jitter": 50, "toxicity": 0.3, "stream": "upstream", "scope": "connection"},
    {"at": 3.0, "kill": "worker-1", "signal": "SIGTERM", "restart_after": 3.0},
    {"at": 4.0, "for": 5.0, "hop": "relay->redis", "toxic": "lost_ack", "toxicity": 0.2},
    {"at": 5.0, "for": 4.0, "pause": "worker-2"},
    {"at": 6.0, "restart": "redis"},
]
DRILL: dict[str, Any] = {
    "name": "d", "seed": SEED, "settle": 20.0,
    "load": {"profile": "spike", "users": 9, "duration": 16.0,
             "spike": {"at": 5.0, "for": 4.0, "multiplier": 2.0},
             "mix": {"transfer": 10, "balance": 1}},
    "faults": FAULTS,
}


def ident(fault: dict[str, Any]) -> str:
    return str(fault.get("hop") or fault.get("kill") or fault.get("pause")
               or fault.get("restart"))


def needs(*idents: str, when: Callable[[dict[str, Any]], bool] = lambda d: True,
          calls: list[dict[str, Any]] | None = None) -> Callable[[dict[str, Any], str], Trial]:
    """A run that fails like TARGET when the drill holds the faults ``idents``."""
    def run(data: dict[str, Any], label: str) -> Trial:
        if calls is not None:
            calls.append(copy.deepcopy(data))
        present = {ident(f) for f in data["faults"]}
        failing = set(idents) <= present and when(data)
        return Trial(seed=data["seed"], exit_code=1 if failing else 0,
                     failure=Failure.of(1, [result()]) if failing else None)
    return run


def test_it_reaches_exactly_the_needed_faults_then_shortens_and_simplifies() -> None:
    shrunk = Shrinker(needs("api->postgres", "worker-2"), TARGET, SEED).shrink(DRILL)
    assert shrunk.stopped == "minimal"
    assert sorted(ident(f) for f in shrunk.minimal["faults"]) == ["api->postgres",
                                                                   "worker-2"]
    latency, pause = shrunk.minimal["faults"]
    assert latency == {"at": 1.0, "for": 0.5, "hop": "api->postgres", "toxic": "latency",
                       "latency": 5}  # toxicity 1, downstream, default scope, no jitter
    assert pause == {"at": 4.0, "for": 0.5, "pause": "worker-2"}  # 3 s after, as drawn
    load = shrunk.minimal["load"]  # 1 s after the pause ends, whole seconds
    assert load == {"profile": "steady", "users": 1, "duration": 6.0}
    assert shrunk.minimal["seed"] == SEED == shrunk.seed
    kept = [s for s in shrunk.steps if s.accepted]
    assert kept
    assert all(s.trials[-1].exit_code == 1 for s in kept)


def test_a_failure_that_needs_no_fault_shrinks_to_none_at_once() -> None:
    shrunk = Shrinker(needs(), TARGET, SEED).shrink(DRILL)
    assert shrunk.minimal["faults"] == []
    assert shrunk.steps[0].what == "remove every fault"
    assert shrunk.steps[0].accepted


def test_the_same_outcomes_give_the_same_candidates() -> None:
    first: list[dict[str, Any]] = []
    second: list[dict[str, Any]] = []
    a = Shrinker(needs("relay->redis", calls=first), TARGET, SEED).shrink(DRILL)
    b = Shrinker(needs("relay->redis", calls=second), TARGET, SEED).shrink(DRILL)
    assert first == second
    assert len(first) > 5
    assert [(s.what, [t.seed for t in s.trials]) for s in a.steps] == \
        [(s.what, [t.seed for t in s.trials]) for s in b.steps]


def flaky(*idents: str, tries: int) -> Callable[[dict[str, Any], str], Trial]:
    """The failure shows in exactly one of a candidate's ``tries`` seeds, which one
    depends on the candidate (as a race that needs the right interleaving)."""
    seeds = try_seeds(SEED, tries)

    def run(data: dict[str, Any], label: str) -> Trial:
        body = {k: v for k, v in data.items() if k != "seed"}
        digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).digest()
        lucky = seeds[digest[0] % tries]
        present = {ident(f) for f in data["faults"]}
        failing = set(idents) <= present and data["seed"] == lucky
        return Trial(seed=data["seed"], exit_code=1 if failing else 0,
                     failure=Failure.of(1, [result()]) if failing else None)
    return run


def test_a_flaky_failure_still_reaches_the_minimal_set_with_k_tries() -> None:
    shrunk = Shrinker(flaky("worker-1", "redis", tries=3), TARGET, SEED, tries=3,
                      max_runs=500).shrink(DRILL)
    assert sorted(ident(f) for f in shrunk.minimal["faults"]) == ["redis", "worker-1"]
    assert shrunk.minimal["load"]["duration"] < DRILL["load"]["duration"]
    assert shrunk.seed in try_seeds(SEED, 3)
    assert any(len(s.trials) > 1 and s.accepted for s in shrunk.steps)  # a later try hit
    # one try per candidate misses most of these failures: the set stays larger
    once = Shrinker(flaky("worker-1", "redis", tries=3), TARGET, SEED, tries=1,
                    max_runs=500).shrink(DRILL)
    assert len(once.minimal["faults"]) > 2


def test_a_different_failure_is_not_the_same_failure() -> None:
    """Without the lost reply the drill still fails, but another checker (or the same
    checker with another kind of error): shrinking must not slip to it."""
    def run(data: dict[str, Any], label: str) -> Trial:
        present = {ident(f) for f in data["faults"]}
        if "relay->redis" in present:
            failure = Failure.of(1, [result(), result("outbox_delivered", "missing")])
        elif "worker-1" in present:
            failure = Failure.of(1, [result(kind="double_charge")])
        else:
            failure = Failure.of(1, [result("outbox_delivered", "missing")])
        return Trial(seed=data["seed"], exit_code=1, failure=failure)

    shrunk = Shrinker(run, TARGET, SEED).shrink(DRILL)
    assert [ident(f) for f in shrunk.minimal["faults"]] == ["relay->redis"]


def test_same_failure_rules() -> None:
    assert TARGET.checker == "acknowledged_exactly_once"
    assert TARGET.kinds == {"lost_ok"}
    steady = Failure.of(1, [result(steady=True)])
    assert steady is not None
    assert steady.steady
    assert steady.checker == TARGET.checker
    assert TARGET.reproduced_by(steady)  # seen in the steady state: the same checker
    assert not TARGET.reproduced_by(Failure.of(1, [result(kind="double_charge")]))
    assert TARGET.reproduced_by(Failure.of(1, [result("conservation", "x"), result()]))
    assert not TARGET.reproduced_by(None)
    for code in (0, 3, 4, 5):
        assert Failure.of(code, [result()]) is None  # not a finding
    slo = Failure.of(2, [{"name": "slo:after:error_rate", "valid": False, "kind": "slo"}])
    assert slo is not None
    assert slo.kinds == frozenset()
    assert slo.reproduced_by(Failure.of(2, [{"name": "slo:after:error_rate",
                                             "valid": False, "kind": "slo"}]))
    # the first violated invariant decides, even when an SLO failed first
    mixed = Failure.of(1, [{"name": "slo:during:p99_ms", "valid": False, "kind": "slo"},
                           result("outbox_delivered", "missing")])
    assert mixed is not None
    assert mixed.checker == "outbox_delivered"


def test_the_budget_bounds_the_runs_and_keeps_the_last_failing_candidate() -> None:
    calls: list[dict[str, Any]] = []
    run = needs("api->postgres", "worker-2", calls=calls)
    shrunk = Shrinker(run, TARGET, SEED, max_runs=8).shrink(DRILL)
    assert shrunk.stopped == "runs"
    assert shrunk.runs == len(calls) == 8
    assert run(shrunk.minimal, "check").failure is not None  # still fails
    assert len(shrunk.minimal["faults"]) < len(FAULTS)
    clock = iter([0.0, 0.0, 100.0, 100.0, 100.0])
    timed = Shrinker(run, TARGET, SEED, deadline=50.0, clock=lambda: next(clock, 100.0))
    assert timed.shrink(DRILL).stopped == "time"


def test_a_triggered_fault_is_started_where_its_trigger_fired() -> None:
    drill = copy.deepcopy(DRILL)
    drill["faults"] = [{"at": 2.0, "for": 3.0, "when": {"operations": 500},
                        "hop": "api->postgres", "toxic": "down"}]

    def run(data: dict[str, Any], label: str) -> Trial:
        fails = bool(data["faults"])
        return Trial(seed=data["seed"], exit_code=1 if fails else 0,
                     failure=Failure.of(1, [result()]) if fails else None, started=[6.3])

    shrunk = Shrinker(run, TARGET, SEED).shrink(drill, started=[6.3])
    (fault,) = shrunk.minimal["faults"]
    assert "when" not in fault
    assert fault["at"] == pytest.approx(1.0)  # fixed at 6.5s, then moved early
    assert any("instead of on its trigger" in s.what for s in shrunk.steps if s.accepted)


def test_invalid_candidates_are_never_run() -> None:
    calls: list[dict[str, Any]] = []

    def valid(data: dict[str, Any]) -> bool:
        return bool(data["load"]["duration"] >= 10)

    shrunk = Shrinker(needs("redis", calls=calls), TARGET, SEED, valid=valid).shrink(DRILL)
    assert all(valid(c) for c in calls)
    assert shrunk.minimal["load"]["duration"] >= 10
    with pytest.raises(ValueError, match="tries"):
        Shrinker(needs(), TARGET, SEED, tries=0)


def test_a_drill_that_does_not_fail_again_is_not_shrunk() -> None:
    calls: list[dict[str, Any]] = []

    def never(data: dict[str, Any], label: str) -> Trial:
        calls.append(data)
        return Trial(seed=data["seed"], exit_code=0)

    shrunk = Shrinker(never, TARGET, SEED, tries=2, confirm=True).shrink(DRILL)
    assert shrunk.stopped == "not reproduced"
    assert [c["seed"] for c in calls] == try_seeds(SEED, 2)
    assert shrunk.minimal["faults"] == FAULTS
    confirmed = Shrinker(needs("redis"), TARGET, SEED, confirm=True).shrink(DRILL)
    assert confirmed.steps[0].what == "the drill as drawn"
    assert confirmed.steps[0].accepted
    assert confirmed.stopped == "minimal"


def test_cosmetic_edits_must_fail_twice_with_the_replay_seed() -> None:
    """Fewer users make this failure flaky (it shows on every other run): the shrinker
    drops the faults it does not need and shortens windows, but keeps the users that
    make the failure reliable — and each kept cosmetic edit failed twice on one seed."""
    calls = {"n": 0}

    def run(data: dict[str, Any], label: str) -> Trial:
        calls["n"] += 1
        needed = "redis" in {ident(f) for f in data["faults"]}
        reliable = data["load"]["users"] >= 5
        failing = needed and (reliable or calls["n"] % 2 == 1)
        return Trial(seed=data["seed"], exit_code=1 if failing else 0,
                     failure=Failure.of(1, [result()]) if failing else None)

    shrunk = Shrinker(run, TARGET, SEED).shrink(DRILL)
    assert [ident(f) for f in shrunk.minimal["faults"]] == ["redis"]
    assert shrunk.minimal["load"]["users"] >= 5
    assert shrunk.minimal["load"]["duration"] < DRILL["load"]["duration"]
    for step in shrunk.steps:
        if step.accepted and step.stage in ("shorter", "simpler"):
            assert len(step.trials) == 2
            assert len({t.seed for t in step.trials}) == 1
            assert all(t.exit_code == 1 for t in step.trials)


def test_the_exploration_exit_code() -> None:
    from faultline.explore._explore import exit_code

    assert exit_code([0, 5, 0]) == 0  # nothing found; vacuous drills are listed, not found
    assert exit_code([0, 0, 1], finding=1) == 1
    assert exit_code([4, 2], finding=2) == 2  # the finding's own code, minimal.yaml replays it
    assert exit_code([0, 3, 5]) == 3  # not everything could be judged
    assert exit_code([0, 3, 4]) == 4
    assert exit_code([5, 5]) == 5  # no drawn fault touched the system: nothing proved
    assert exit_code([]) == 4
    assert exit_code([0, 1], finding=1, interrupted=True) == 130


def test_a_try_the_stack_spoiled_is_run_again() -> None:
    """Exit 3/4 (a port taken between choosing and binding it, a stack that would not
    start) says nothing about the candidate: the same seed runs once more."""
    outcomes = iter([4, 1])

    def run(data: dict[str, Any], label: str) -> Trial:
        code = next(outcomes, 0)
        return Trial(seed=data["seed"], exit_code=code,
                     failure=Failure.of(1, [result()]) if code == 1 else None)

    shrinker = Shrinker(run, TARGET, SEED, max_runs=2, confirm=True)
    shrunk = shrinker.shrink(DRILL)
    first = shrunk.steps[0]
    assert first.accepted
    assert [t.exit_code for t in first.trials] == [4, 1]
    assert {t.seed for t in first.trials} == {SEED}


def test_a_drill_without_faults_gets_half_the_load() -> None:
    def run(data: dict[str, Any], label: str) -> Trial:
        failing = data["load"]["duration"] >= 8  # a race that needs a few seconds
        return Trial(seed=data["seed"], exit_code=1 if failing else 0,
                     failure=Failure.of(1, [result()]) if failing else None)

    shrunk = Shrinker(run, TARGET, SEED).shrink(DRILL)
    assert shrunk.minimal["faults"] == []
    assert shrunk.minimal["load"]["duration"] == 8.0


def test_a_verdict_is_read_with_its_steady_state_and_fault_starts() -> None:
    from faultline.checks import CheckResult, verdict
    from faultline.explore import Explorer

    probe = [CheckResult.from_dict(result("audit_complete", "broken_chain"))]
    v = verdict([CheckResult("conservation", True)], steady_state_results=probe,
                expected=["conservation"], faults=[{"name": "x", "start_s": 2.5,
                                                    "effect": {"n": 1}}])
    failure, started, reason = Explorer._judged(v.exit_code, v)
    assert v.exit_code == 1
    assert failure is not None
    assert failure.checker == "audit_complete"
    assert failure.steady
    assert started == [2.5]
    assert "steady-state" in reason
    assert Explorer._judged(4, None)[0] is None


def _one_in_three(reliable: set[str], needed: set[str]) -> Callable[[dict[str, Any], str], Trial]:
    """Fails every time with the faults ``reliable``; with only ``needed`` of them, on
    every third run of a candidate (a race its other faults made likely)."""
    seen: dict[str, int] = {}

    def run(data: dict[str, Any], label: str) -> Trial:
        present = {ident(f) for f in data["faults"]}
        key = json.dumps(sorted(present))
        seen[key] = seen.get(key, 0) + 1
        failing = reliable <= present or (needed <= present and seen[key] % 3 == 0)
        return Trial(seed=data["seed"], exit_code=1 if failing else 0,
                     failure=Failure.of(1, [result()]) if failing else None)
    return run


def test_a_minimal_drill_that_fails_in_a_minority_of_replays_is_walked_back() -> None:
    """Dropping a fault on one try in three keeps ``{redis}`` (its third try hit), a drill
    that fails 1 replay in 3. The confirmation replays it, sets it aside and walks back
    to the smallest kept candidate that fails in most replays: ``{worker-2, redis}``."""
    shrinker = Shrinker(_one_in_three({"redis", "worker-2"}, {"redis"}), TARGET, SEED,
                        tries=3, max_runs=200)
    shrunk = shrinker.shrink(DRILL)
    assert [ident(f) for f in shrunk.minimal["faults"]] == ["redis"]  # the weak one
    confirmed = shrinker.confirm_minimal(shrunk)
    assert sorted(ident(f) for f in confirmed.minimal["faults"]) == ["redis", "worker-2"]
    assert confirmed.reliable
    assert confirmed.confirmed == (2, 2)
    assert confirmed.walked_back == 1
    assert confirmed.runs > shrunk.runs
    replays = [s for s in shrinker.steps if s.stage == "replay"]
    assert [s.accepted for s in replays] == [False] * (len(replays) - 1) + [True]
    assert all(t.seed == replays[0].trials[0].seed for t in replays[0].trials)  # its seed


def test_a_minimal_drill_that_always_fails_is_confirmed_in_two_runs() -> None:
    shrinker = Shrinker(needs("redis"), TARGET, SEED, tries=3)
    shrunk = shrinker.confirm_minimal(shrinker.shrink(DRILL))
    assert [ident(f) for f in shrunk.minimal["faults"]] == ["redis"]
    assert shrunk.reliable
    assert shrunk.confirmed == (2, 2)
    assert shrunk.walked_back == 0


def test_when_no_candidate_fails_in_most_replays_the_smallest_is_marked_flaky() -> None:
    """Not even the drill as drawn fails in most replays: the smallest is written out,
    marked not reliable, with how often it failed; the walk back is bounded."""
    shrinker = Shrinker(_one_in_three({"nothing"}, {"redis"}), TARGET, SEED, tries=3,
                        max_runs=200)
    shrunk = shrinker.shrink(DRILL)
    before = shrunk.runs
    confirmed = shrinker.confirm_minimal(shrunk, budget=12)
    assert not confirmed.reliable
    assert confirmed.minimal == shrunk.minimal
    assert confirmed.confirmed[0] < 2
    assert confirmed.runs - before <= 12


def test_a_drill_shrinking_had_no_runs_for_is_still_replayed() -> None:
    """``--shrink-runs 0``: nothing was kept, the drill as drawn is what is written out,
    and it is replayed like any minimal drill."""
    shrinker = Shrinker(needs("redis"), TARGET, SEED, tries=3, max_runs=0, confirm=True)
    shrunk = shrinker.shrink(DRILL)
    assert shrunk.stopped == "runs"
    assert shrunk.runs == 0
    confirmed = shrinker.confirm_minimal(shrunk)
    assert confirmed.minimal["faults"] == FAULTS
    assert confirmed.confirmed == (2, 2)
    assert confirmed.reliable
