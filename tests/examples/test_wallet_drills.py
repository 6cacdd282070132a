"""The wallet drilled end to end through its profile, with the scenarios of its README:
the correct build holds with a fault that did something, and each deliberate bug is
caught by the checker that names it. Each drill: ~7 s of stack start, a probe, 16 s of
load, settle; about 35 s on a 2-core machine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from faultline.drill import DrillOptions, DrillOutcome, run_drill

SCENARIOS = Path(__file__).resolve().parents[2] / "examples" / "wallet" / "scenarios"

pytestmark = [pytest.mark.stack, pytest.mark.slow]

#: bug -> (scenario, the checker that must name it)
BUGS: dict[str, tuple[str, str]] = {
    "idempotency_after_commit": ("lost-ack", "acknowledged_exactly_once"),
    "unlocked_balance_check": ("slow-database-drain", "non_negative"),
    "webhook_marked_before_send": ("webhook-outage", "outbox_delivered"),
    "merchant_applies_twice": ("webhook-outage", "projection_converges"),
}


def _drill(name: str, tmp_path: Path, bugs: list[str] | None = None) -> DrillOutcome:
    return run_drill(SCENARIOS / f"{name}.yaml",
                     DrillOptions(runs_dir=tmp_path, bugs=bugs or [], progress=False))


def test_correct_build_holds_under_lost_acks(tmp_path: Path) -> None:
    outcome = _drill("lost-ack", tmp_path)
    assert outcome.exit_code == 0, outcome.summary
    assert outcome.run_dir is not None
    verdict = json.loads((outcome.run_dir / "verdict.json").read_text())
    [fault] = verdict["faults"]
    assert fault["status"] == "fired", fault
    assert fault["effect"]["replies_dropped"] > 0, fault
    assert fault["operations"]["info"] > 0, fault  # clients met unknown outcomes...
    results = {r["name"]: r for r in verdict["results"]}
    counts = results["acknowledged_exactly_once"]["counts"]
    assert counts["info_keys"] > 0, counts
    assert counts["ok_keys"] > 0, counts
    assert results["idempotent_replay"]["counts"]["replays_ok"] > 0  # ...and retried


#: the webhook bugs break different checkers in one scenario: caught by one drill
GROUPS = [("idempotency_after_commit",), ("unlocked_balance_check",),
          ("merchant_applies_twice", "webhook_marked_before_send")]


@pytest.mark.parametrize("bugs", GROUPS, ids=["+".join(g) for g in GROUPS])
def test_each_bug_is_caught(bugs: tuple[str, ...], tmp_path: Path) -> None:
    [scenario] = {BUGS[bug][0] for bug in bugs}
    outcome = _drill(scenario, tmp_path, list(bugs))
    assert outcome.exit_code == 1, f"{bugs} not caught by {scenario}:\n{outcome.summary}"
    failed = {r.name for r in outcome.verdict.results if r.valid is False}
    for bug in bugs:
        assert BUGS[bug][1] in failed, f"{bug}:\n{outcome.summary}"
