"""State-triggered faults on the real stack: each starts within a second of its
condition (a count of operations, a scraped metric crossing a bound), and one whose
condition never comes is skipped at its deadline and reported so."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from faultline.drill import DrillOptions, run_drill

pytestmark = [pytest.mark.stack, pytest.mark.slow]

DRILL = Path(__file__).resolve().parent / "drills" / "triggers.yaml"
SECOND = 1_000_000_000


def test_faults_start_within_a_second_of_their_condition(tmp_path: Path) -> None:
    outcome = run_drill(DRILL, DrillOptions(runs_dir=tmp_path, progress=False))
    assert outcome.exit_code == 0, outcome.summary
    run = outcome.run_dir
    assert run is not None
    history = [json.loads(x) for x in (run / "history.jsonl").read_text().splitlines()]
    starts = {h["value"]["index"]: h["time"] for h in history
              if h["process"] == "nemesis" and h["f"] == "start"}
    # after 150 completed operations
    done = [h["time"] for h in history if h["process"] != "nemesis" and h["type"] != "invoke"]
    reached = done[149]
    assert 0 <= starts[0] - reached < SECOND, (starts[0] - reached) / SECOND
    # when the relay's outbox backlog (scraped) first exceeded 20
    scrapes = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    crossed = min(s["time_ns"] for s in scrapes if s.get("up")
                  and s["values"].get("payments_outbox_backlog", 0) > 20)
    assert starts[1] < crossed  # the cut came first: it is what backs the outbox up
    assert 0 <= starts[2] - crossed < SECOND, (starts[2] - crossed) / SECOND
    # never: skipped at its deadline (5 s after the load began), reported as such
    skipped = [h for h in history if h["process"] == "nemesis" and h["f"] == "skipped"]
    assert [h["value"]["index"] for h in skipped] == [3]
    first_op = min(h["time"] for h in history if h["process"] != "nemesis")
    assert 5 * SECOND <= skipped[0]["time"] - first_op < 6 * SECOND
    faults = json.loads((run / "verdict.json").read_text())["faults"]
    assert [f["status"] for f in faults] == ["fired", "fired", "fired", "skipped"]
    assert faults[3]["vacuous"] is False  # it said it might never happen
