"""Scenario files: what is accepted, and how invalid files are reported."""

from __future__ import annotations

from pathlib import Path

import pytest

import faultline.scenario as scenario_pkg
from faultline.checks import INVARIANTS
from faultline.scenario import (
    KillFault,
    PauseFault,
    RestartFault,
    ScenarioError,
    ToxicFault,
    format_duration,
    load_scenario,
    parse_duration,
    parse_scenario,
    validate_paths,
)

GOOD = """\
name: lost-ack-under-load
description: >
  The database commits a transfer but the reply never reaches the API.
seed: 7
stack: local
load: {profile: steady, users: 40, spawn_rate: 20, duration: 90s, rate: 200,
       mix: {transfer: 6, replay: 2, replay_diff: 1, balance: 1}}
faults:
  - {at: 20s, for: 30s, hop: api->postgres, toxic: lost_ack, toxicity: 0.2}
  - {at: 60s, kill: worker-1, signal: SIGKILL, restart_after: 5s, name: kill-worker}
  - {at: 10s, until: 15s, hop: api->risk, toxic: latency, latency: 200ms, jitter: 20}
  - {at: 30s, for: 2s, pause: worker-2}
  - {at: 70s, restart: redis}
  - {at: 5s, for: 1s, hop: api->risk, toxic: http_error, attributes: {status: 429, retry_after: 1}}
invariants: [conservation, acknowledged_exactly_once]
expect_alerts:
  - {alert: outbox_backlog, within: 30s, clear_within: 1m, fault: kill-worker}
  - {alert: breaker_open, within: 10s, fault: 2}
slos:
  - {phase: during, p99_ms: {below: 800}, error_rate: {below: 0.25}}
  - {phase: after, error_rate: 0.01, throughput: 50, recover_within: 15s}
"""


def write(tmp_path: Path, text: str, name: str = "s.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_full_scenario_loads(tmp_path: Path) -> None:
    scn = load_scenario(write(tmp_path, GOOD))
    assert scn.name == "lost-ack-under-load"
    assert scn.seed == 7
    assert scn.load.duration == 90.0
    assert scn.load.rate == 200
    assert scn.load.mix == {"transfer": 6, "replay": 2, "replay_diff": 1, "balance": 1}
    toxic, kill, latency, pause, restart, http = scn.faults
    assert isinstance(toxic, ToxicFault)
    assert (toxic.hop, toxic.toxic, toxic.toxicity, toxic.end) == ("api->postgres", "lost_ack", 0.2, 50.0)
    assert toxic.scope == "exchange"  # pooled connections: roll per request, not per connection
    assert scn.system == "payments"
    assert isinstance(kill, KillFault)
    assert (kill.service, kill.signal, kill.restart_after, kill.end) == ("worker-1", "SIGKILL", 5.0, None)
    assert kill.label == "kill-worker"
    assert isinstance(latency, ToxicFault)
    assert latency.attributes == {"latency": 200, "jitter": 20}
    assert latency.end == 15.0
    assert isinstance(pause, PauseFault)
    assert pause.service == "worker-2"
    assert isinstance(restart, RestartFault)
    assert isinstance(http, ToxicFault)
    assert http.attributes == {"status": 429, "retry_after": 1.0}
    assert scn.invariants == ["conservation", "acknowledged_exactly_once"]
    assert scn.slos[1].throughput is not None
    assert scn.slos[1].throughput.above == 50
    assert scn.slos[1].error_rate is not None
    assert scn.slos[1].error_rate.below == 0.01


def test_defaults(tmp_path: Path) -> None:
    scn = parse_scenario("name: tiny\nload: {duration: 10s}\n")
    assert scn.invariants == list(INVARIANTS)
    assert scn.faults == []
    assert scn.stack == "local"
    assert scn.load.effective_spawn_rate == scn.load.users


def test_overrides_revalidate() -> None:
    scn = parse_scenario(GOOD).with_overrides(seed=99)
    assert scn.seed == 99
    assert scn.faults[1].label == "kill-worker"


@pytest.mark.parametrize(
    ("text", "value"),
    [("90s", 90.0), ("2m", 120.0), ("500ms", 0.5), ("1m30s", 90.0), ("1h", 3600.0), (12, 12.0), ("1.5s", 1.5)],
)
def test_durations(text: object, value: float) -> None:
    assert parse_duration(text) == value


@pytest.mark.parametrize("bad", ["9x", "", "s", "-1s", True, [1]])
def test_bad_durations(bad: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(bad)


def test_format_duration() -> None:
    assert [format_duration(s) for s in (0.5, 45, 90, 120)] == ["500ms", "45s", "1m30s", "2m"]


# ------------------------------------------------------------------ errors


def error_of(tmp_path: Path, text: str) -> ScenarioError:
    path = write(tmp_path, text, "broken.yaml")
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    message = str(info.value)
    assert str(path) in message
    assert "Traceback" not in message
    return info.value


def test_malformed_yaml_names_file_and_line(tmp_path: Path) -> None:
    err = error_of(tmp_path, "name: x\nload: {duration: 10s\nfaults: []\n")
    assert "malformed YAML" in str(err)
    assert err.problems[0].line is not None


def test_unknown_toxic_names_the_path_and_the_choices(tmp_path: Path) -> None:
    err = error_of(tmp_path, "name: x\nload: {duration: 60s}\nfaults:\n"
                   "  - {at: 1s, for: 2s, hop: api->postgres, toxic: latency, latency: 5}\n"
                   "  - {at: 1s, for: 2s, hop: api->postgres, toxic: latncy}\n")
    [problem] = err.problems
    assert problem.field == "faults[1].toxic"
    assert problem.line == 5
    assert "latncy" in problem.message
    assert "lost_ack" in problem.message
    assert "broken.yaml:5: faults[1].toxic:" in str(err)


def test_missing_field(tmp_path: Path) -> None:
    err = error_of(tmp_path, "name: x\nfaults: []\n")
    assert [p.field for p in err.problems] == ["load"]
    assert "missing" in err.problems[0].message


def test_bad_duration_names_the_field(tmp_path: Path) -> None:
    err = error_of(tmp_path, "name: x\nload:\n  users: 3\n  duration: 9 parsecs\n")
    [problem] = err.problems
    assert problem.field == "load.duration"
    assert problem.line == 4
    assert "90s" in problem.message


def test_unknown_hop_service_and_attribute(tmp_path: Path) -> None:
    err = error_of(tmp_path, "name: x\nload: {duration: 60s}\nfaults:\n"
                   "  - {at: 1s, hop: api->pg, toxic: latency, latency: 5}\n"
                   "  - {at: 1s, kill: database}\n"
                   "  - {at: 1s, hop: api->redis, toxic: latency, latency: 5, jittr: 3}\n"
                   "  - {at: 1s, hop: api->redis, toxic: bandwidth}\n")
    fields = {p.field: p.message for p in err.problems}
    assert "api->postgres" in fields["faults[0].hop"]
    assert "worker-1" in fields["faults[1].kill"]
    assert "'jittr' is not an attribute of a latency toxic" in fields["faults[2]"]
    assert "needs 'rate'" in fields["faults[3]"]


def test_fault_needs_exactly_one_kind(tmp_path: Path) -> None:
    err = error_of(tmp_path, "name: x\nload: {duration: 60s}\nfaults:\n"
                   "  - {at: 1s, kill: worker-1, pause: worker-2}\n  - {at: 1s}\n")
    assert [p.field for p in err.problems] == ["faults[0]", "faults[1]"]
    assert all("exactly one of" in p.message for p in err.problems)


def test_pause_needs_a_window_and_for_until_exclusive(tmp_path: Path) -> None:
    err = error_of(tmp_path, "name: x\nload: {duration: 60s}\nfaults:\n"
                   "  - {at: 1s, pause: worker-1}\n  - {at: 1s, for: 1s, until: 5s, restart: api}\n")
    fields = {p.field: p.message for p in err.problems}
    assert "pause needs 'for'" in fields["faults[0]"]
    assert "either 'for' or 'until'" in fields["faults[1]"]


def test_fault_after_the_load_and_dangling_alert_reference(tmp_path: Path) -> None:
    err = error_of(tmp_path, "name: x\nload: {duration: 60s}\nfaults:\n  - {at: 90s, restart: api}\n")
    assert err.problems[0].field == "faults[0].at"
    err = error_of(tmp_path, "name: x\nload: {duration: 60s}\nfaults:\n  - {at: 9s, restart: api}\n"
                   "expect_alerts:\n  - {alert: a, within: 5s, fault: nope}\n")
    assert err.problems[0].field == "expect_alerts[0].fault"
    assert err.problems[0].line == 6


def test_unknown_fields_invariants_and_phases(tmp_path: Path) -> None:
    err = error_of(tmp_path, "name: x\nload: {duration: 60s, userz: 3}\ninvariants: [conservatoin]\n"
                   "slos: [{phase: durin, p99_ms: 800}]\nextra: 1\n")
    fields = {p.field: p.message for p in err.problems}
    assert "unknown field" in fields["load.userz"]
    assert "conservatoin" in fields["invariants"]
    assert "'during'" in fields["slos[0].phase"]
    assert "extra" in fields


def test_not_a_mapping_and_unreadable(tmp_path: Path) -> None:
    assert "mapping" in str(error_of(tmp_path, "- just\n- a list\n"))
    assert "empty" in str(error_of(tmp_path, ""))
    with pytest.raises(ScenarioError, match="cannot read"):
        load_scenario(tmp_path / "missing.yaml")


def test_validate_paths_walks_directories(tmp_path: Path) -> None:
    write(tmp_path, GOOD, "good.yaml")
    write(tmp_path, "name: lost-ack-under-load\nload: {duration: 1s}\n", "same-name.yaml")
    write(tmp_path, "name: x\nload: {duration: bad}\n", "bad.yml")
    errors = validate_paths([tmp_path])
    assert sorted(Path(e.file).name for e in errors) == ["bad.yml", "same-name.yaml"]
    assert validate_paths([tmp_path / "good.yaml"]) == []


def test_public_surface_is_exactly_all() -> None:
    # "@py_*": pytest rewrites faultline's modules (it is a pytest plugin package)
    public = {n for n in dir(scenario_pkg) if not n.startswith(("_", "@"))}
    modules = {"annotations"}
    assert public - modules == set(scenario_pkg.__all__)
