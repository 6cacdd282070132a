"""verdict.json, junit.xml, report.html and the text summary."""

from __future__ import annotations

import copy
import io
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import faultline.report as report_pkg
from faultline.checks import CheckContext, Verdict, check_slos, run_checks, verdict
from faultline.checks.synthetic import synthetic_run
from faultline.report import format_summary, print_summary, render_html, write_report
from faultline.scenario import parse_scenario

SCENARIO = """
name: report-test
description: a <b>bold</b> claim & more
load: {duration: 10s}
faults: [{at: 1s, for: 1s, hop: api->postgres, toxic: latency, latency: 100}]
slos:
  - {phase: during, p99_ms: 1}
  - {phase: after, error_rate: 0.5}
expect_alerts: [{alert: outbox_backlog, within: 5s}]
"""


@pytest.fixture(scope="module")
def drill() -> tuple[Verdict, list, object]:  # type: ignore[type-arg]
    run = synthetic_run(800, seed=9, accounts=10)
    state = copy.deepcopy(run.state)
    state["accounts"][2]["balance"] = -5  # a violated invariant
    scn = parse_scenario(SCENARIO)
    ctx = CheckContext(alerts=[])
    results = run_checks(None, run.history, state, ctx) + check_slos(scn, run.history, ctx)
    v = verdict(results, scenario=scn.name, seed=scn.seed)
    return v, run.history, scn


def test_write_report_writes_three_files(tmp_path: Path, drill: tuple) -> None:  # type: ignore[type-arg]
    v, history, scn = drill
    alerts = [{"alert": "breaker_open", "state": "firing", "time_ns": history[10]["time"], "labels": {}}]
    breaker = [{"time_ns": history[20]["time"], "name": "risk", "old": "closed", "new": "open"}]
    junit_copy = tmp_path / "ci" / "junit.xml"
    junit_copy.parent.mkdir()
    paths = write_report(tmp_path / "run", v, history, scenario=scn, alerts=alerts,
                         breaker_events=breaker, replay_command="faultline run x.yaml --seed 0",
                         junit_path=junit_copy)
    assert {p.name for p in paths.values()} == {"verdict.json", "junit.xml", "report.html"}
    assert junit_copy.exists()

    data = json.loads(paths["verdict"].read_text())
    assert data["exit_code"] == 1
    assert Verdict.from_dict(data).exit_code == 1
    assert any(r["name"] == "non_negative" and r["valid"] is False for r in data["results"])

    root = ET.parse(paths["junit"]).getroot()
    suite = root.find("testsuite")
    assert suite is not None
    cases = suite.findall("testcase")
    assert len(cases) == len(v.results)
    assert int(suite.get("failures", "0")) == len(v.failed)
    failing = {c.get("name"): c for c in cases if c.find("failure") is not None}
    assert "non_negative" in failing
    assert "slo:during:p99_ms" in failing
    failure = failing["non_negative"].find("failure")
    assert failure is not None
    assert "negative_balance" in (failure.get("type") or "")
    assert "accounts rows" in (failure.text or "")

    html = paths["html"].read_text()
    assert html.count("<svg") == 2
    assert "<script" not in html.lower()
    assert not re.search(r"(src|href)=\"https?:", html)  # self-contained
    assert "&lt;b&gt;bold&lt;/b&gt;" in html  # escaped
    assert "risk: open" in html  # breaker change marked
    assert "breaker_open" in html  # alert listed
    assert "latency@api-&gt;postgres" in html  # fault window shaded and named
    assert "faultline run x.yaml --seed 0" in html


def test_unknown_is_a_junit_error_not_a_pass(tmp_path: Path) -> None:
    from faultline.checks import CheckResult

    v = verdict([CheckResult("audit_complete", "unknown", message="crashed")])
    write_report(tmp_path, v, [])
    suite = ET.parse(tmp_path / "junit.xml").getroot().find("testsuite")
    assert suite is not None
    assert suite.get("errors") == "1"
    assert "alert rules were not evaluated" in (tmp_path / "report.html").read_text()


def test_harness_error_without_results_still_makes_a_testcase(tmp_path: Path) -> None:
    v = verdict([], harness_error="stack did not start")
    write_report(tmp_path, v, [])
    suite = ET.parse(tmp_path / "junit.xml").getroot().find("testsuite")
    assert suite is not None
    assert suite.get("tests") == "1"
    assert json.loads((tmp_path / "verdict.json").read_text())["exit_code"] == 4


def test_summary_lists_every_check_and_the_exit_code(drill: tuple) -> None:  # type: ignore[type-arg]
    v = drill[0]
    text = format_summary(v)
    assert "FAIL  non_negative" in text
    assert "negative_balance x1" in text
    assert text.splitlines()[-1].startswith("=> INVARIANT VIOLATED (exit 1)")
    assert "\033[" not in text
    buf = io.StringIO()
    print_summary(v, file=buf)
    assert buf.getvalue().strip() == text


def test_html_renders_for_an_empty_history() -> None:
    html = render_html(verdict([], harness_error="x"), [])
    assert "<svg" in html


def test_public_surface_is_exactly_all() -> None:
    public = {n for n in dir(report_pkg) if not n.startswith(("_", "@"))}
    assert public - {"annotations"} == set(report_pkg.__all__)
