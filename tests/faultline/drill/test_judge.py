"""The judge on stored run folders: every fault reported with its effect, a drill whose
fault changed nothing is vacuous (exit 5), a violation during the steady state is a
violation (exit 1), and ``faultline check`` recomputes the same from the files alone."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from faultline.checks import CheckResult, StoredRun
from faultline.drill import DrillRecord, RunFolder, fault_report, judge
from faultline.scenario import load_scenario

REPO = Path(__file__).resolve().parents[3]
SCENARIO = """\
name: judged
load: {duration: 10s}
invariants: [conservation]
faults:
  - {at: 1s, for: 2s, hop: api->postgres, toxic: limit_data, bytes: 100000000}
  - {at: 1s, for: 2s, hop: api->redis, toxic: latency, latency: 10}
  - {at: 2s, for: 1s, pause: relay, when: {operations: 99999}}
"""
STATE = {"accounts": [{"id": "a", "merchant_id": "m", "currency": "EUR", "balance": 0,
                       "non_negative": True, "kind": "customer"}],
         "entries": [], "transfers": [], "external_inflow": {"EUR": 0}}


def _op(t: int, process: str, type_: str) -> dict[str, Any]:
    return {"time": t, "process": process, "type": type_, "f": "balance"}


def _nemesis(t: int, f: str, index: int, **value: Any) -> dict[str, Any]:
    return {"time": t, "process": "nemesis", "type": "info", "f": f,
            "value": {"index": index, **value}}


def _run(tmp_path: Path, *, limit_effect: dict[str, int] | None,
         expect_pause: bool = True) -> RunFolder:
    folder = RunFolder.create(tmp_path, "judged")
    text = SCENARIO if expect_pause else SCENARIO.replace(
        "when: {operations: 99999}}", "when: {operations: 99999}, expect_effect: false}")
    folder.scenario.write_text(text)
    s = 1_000_000_000
    history = [
        _op(0, "p1", "invoke"), _op(1, "p1", "ok"),
        _nemesis(1 * s, "start", 0), _nemesis(1 * s, "start", 1),
        _op(int(1.5 * s), "p1", "invoke"), _op(int(1.6 * s), "p2", "invoke"),
        _op(int(1.7 * s), "p1", "info"),
        _nemesis(3 * s, "stop", 0, **({"effect": limit_effect} if limit_effect is not None
                                      else {})),
        _nemesis(3 * s, "stop", 1, effect={"bytes_delayed": 512, "delay_ms": 40},
                 seen={"connections": 4}),
        _op(4 * s, "p2", "ok"),  # invoked inside both windows, answered after
        _op(5 * s, "p3", "invoke"),  # never answered: unknown
        _nemesis(9 * s, "skipped", 2, reason="after 99999 operations did not happen"),
    ]
    folder.history.write_text("".join(json.dumps(x) + "\n" for x in history))
    folder.final_state.with_suffix(".json").write_text(json.dumps(STATE))
    DrillRecord(steady_message="fine").save(folder)
    return folder


def test_every_fault_is_reported_with_its_effect_and_operations(tmp_path: Path) -> None:
    folder = _run(tmp_path, limit_effect={"connections_closed": 0, "bytes_cut": 0})
    scn = load_scenario(folder.scenario)
    limit, latency, pause = fault_report(StoredRun.open(history=folder.history, state=None), scn)
    assert latency["status"] == "fired"
    assert latency["effect"] == {"bytes_delayed": 512, "delay_ms": 40}
    assert latency["seen"] == {"connections": 4}
    assert latency["operations"] == {"invoked": 2, "ok": 1, "fail": 0, "info": 1}
    assert (latency["start_s"], latency["end_s"]) == (1.0, 3.0)
    assert limit["status"] == "no_effect"  # attached, never reached its byte limit
    assert limit["vacuous"]
    assert pause["status"] == "skipped"
    assert "did not happen" in pause["errors"][0]


def test_a_drill_whose_fault_changed_nothing_is_vacuous(tmp_path: Path) -> None:
    folder = _run(tmp_path, limit_effect={"connections_closed": 0, "bytes_cut": 0})
    judged = judge(folder, load_scenario(folder.scenario))
    v = judged.verdict
    assert (v.exit_code, v.status) == (5, "vacuous")
    assert "limit_data@api->postgres (no effect)" in v.reason
    assert "pause relay (skipped)" in v.reason
    assert [r.name for r in v.results] == ["conservation"]  # still checked
    assert v.results[0].valid is True
    assert [f["name"] for f in v.to_dict()["faults"] if f["vacuous"]] == [
        "limit_data@api->postgres", "pause relay"]


def test_effect_unknown_is_vacuous_and_expect_effect_false_is_not(tmp_path: Path) -> None:
    folder = _run(tmp_path / "a", limit_effect=None)  # a real Toxiproxy counts nothing
    faults = fault_report(StoredRun.open(history=folder.history, state=None),
                          load_scenario(folder.scenario))
    assert faults[0]["status"] == "effect_unknown"
    assert faults[0]["vacuous"]
    folder = _run(tmp_path / "b", limit_effect={"connections_closed": 2}, expect_pause=False)
    v = judge(folder, load_scenario(folder.scenario)).verdict
    assert v.exit_code == 0, v.reason  # the skipped fault said it might do nothing


def test_a_violation_in_the_steady_state_is_exit_1_naming_the_checker(tmp_path: Path) -> None:
    folder = RunFolder.create(tmp_path, "judged")
    folder.scenario.write_text(SCENARIO)
    broken = CheckResult(name="conservation", valid=False, message="unbalanced x1",
                         errors=[{"type": "unbalanced", "count": 1, "first": {}, "worst": {},
                                  "last": {}}])
    DrillRecord(steady_message="invariants broken before any fault: conservation",
                steady_results=[broken.to_dict()]).save(folder)
    v = judge(folder, load_scenario(folder.scenario)).verdict
    assert v.exit_code == 1
    assert "conservation" in v.reason


def test_faultline_check_recomputes_it(tmp_path: Path) -> None:
    folder = _run(tmp_path, limit_effect={"connections_closed": 0})
    res = subprocess.run([sys.executable, "-m", "faultline", "check", str(folder.path)],
                         capture_output=True, text=True, timeout=60, cwd=REPO)
    assert res.returncode == 5, res.stdout + res.stderr
    assert "VACUOUS" in res.stdout
