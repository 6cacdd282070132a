"""A fault that never acts makes a real drill vacuous (exit 5), not green: a
``limit_data`` toxic whose byte limit the load never reaches, on the real stack."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from faultline.drill import DrillOptions, run_drill

pytestmark = [pytest.mark.stack, pytest.mark.slow]

SCENARIO = """\
name: never-reaches-its-limit
seed: 3
load: {profile: steady, users: 4, duration: 5s}
faults:
  - {at: 1s, for: 3s, hop: api->postgres, toxic: limit_data, bytes: 100000000}
settle: 10s
"""


def test_a_fault_that_never_acted_makes_the_drill_vacuous(tmp_path: Path) -> None:
    scenario = tmp_path / "vacuous.yaml"
    scenario.write_text(SCENARIO)
    outcome = run_drill(scenario, DrillOptions(runs_dir=tmp_path / "runs", progress=False))
    assert outcome.exit_code == 5, outcome.summary
    assert outcome.run_dir is not None
    verdict = json.loads((outcome.run_dir / "verdict.json").read_text())
    assert verdict["status"] == "vacuous"
    [fault] = verdict["faults"]
    assert fault["vacuous"], fault
    assert fault["status"] == "no_effect", fault
    assert fault["seen"]["bytes"] > 0  # it was attached and traffic passed through it
    assert not any(fault["effect"].values())
    assert all(r["valid"] is not False for r in verdict["results"])  # still checked: held
