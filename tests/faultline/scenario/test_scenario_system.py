"""What depends on the system under test (checked against its profile), triggered faults,
and the defensive YAML reader (hostile and clumsy files: one clear line, exit 4, fast)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from faultline.scenario import ActionFault, ScenarioError, Trigger, load_scenario, parse_scenario

REPO = Path(__file__).resolve().parents[3]


def problems(text: str) -> dict[str, str]:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(text, "s.yaml")
    assert "Traceback" not in str(info.value)
    return {p.field: p.message for p in info.value.problems}


def test_the_system_defaults_come_from_its_profile() -> None:
    scn = parse_scenario("name: x\nload: {duration: 10s}\n")
    assert scn.system == "payments"
    assert scn.load.mix == {"transfer": 60.0, "replay": 10.0, "replay_diff": 5.0,
                            "balance": 15.0, "statement": 10.0}
    assert "outbox_delivered" in scn.checks
    assert scn.load.params["races"] == 0.04  # the workload's defaults, filled in


def test_unknown_system_operation_param_and_invariant() -> None:
    assert "unknown system 'bank'" in problems("name: x\nsystem: bank\nload: {duration: 10s}\n")[
        "system"]
    found = problems("name: x\nload: {duration: 10s, mix: {transfer: 1, refund: 1},"
                     " params: {racez: 1}}\n")
    assert "unknown operation 'refund'" in found["load.mix"]
    assert "racez" in found["load.params"]
    found = problems("name: x\nload: {duration: 10s, params: {at_balance: 2}}\n")
    assert "share between 0 and 1" in found["load.params"]
    assert "cannot run on 'mars'" not in str(found)


def test_hop_service_action_and_protocol_are_the_systems() -> None:
    found = problems("name: x\nload: {duration: 30s}\nfaults:\n"
                     "  - {at: 1s, for: 1s, hop: api->postgres, toxic: http_error}\n"
                     "  - {at: 1s, for: 1s, action: drop_tables}\n"
                     "  - {at: 1s, kill: mailer}\n")
    assert "needs a hop that speaks HTTP; api->postgres speaks postgres" in found[
        "faults[0].toxic"]
    assert "unknown action 'drop_tables'" in found["faults[1].action"]
    assert "replica_replay_pause" in found["faults[1].action"]
    assert "unknown service 'mailer'" in found["faults[2].kill"]


def test_an_action_fault() -> None:
    scn = parse_scenario("name: x\nload: {duration: 30s}\nfaults:\n"
                         "  - {at: 5s, for: 10s, action: replica_replay_pause}\n")
    [fault] = scn.faults
    assert isinstance(fault, ActionFault)
    assert (fault.kind, fault.target, fault.end) == ("action", "replica_replay_pause", 15.0)


def test_triggered_faults() -> None:
    scn = parse_scenario("name: x\nload: {duration: 60s}\nfaults:\n"
                         "  - {at: 5s, for: 4s, kill: worker-1, restart_after: 2s,\n"
                         "     when: {metric: stream_pending, above: 0, deadline: 30s}}\n"
                         "  - {at: 0s, for: 5s, pause: relay, when: {operations: 500}}\n"
                         "  - {at: 1s, for: 1s, restart: redis, when: {metric: payments_worker_pending,"
                         " below: 1}}\n")
    first, second, third = (f.when for f in scn.faults)
    assert isinstance(first, Trigger)
    assert (first.metric, first.above, first.deadline) == ("stream_pending", 0, 30.0)
    assert second.operations == 500
    assert third.metric == "payments_worker_pending"  # a raw metric of the system
    found = problems("name: x\nload: {duration: 60s}\nfaults:\n"
                     "  - {at: 5s, for: 1s, pause: relay, when: {metric: queue_depth, above: 1}}\n")
    assert "unknown metric 'queue_depth'" in found["faults[0].when.metric"]
    found = problems("name: x\nload: {duration: 60s}\nfaults:\n"
                     "  - {at: 5s, for: 1s, pause: relay, when: {metric: queue_depth, above: 1}}\n"
                     "  - {at: 5s, for: 1s, pause: relay, when: {metric: stream_pending}}\n"
                     "  - {at: 5s, until: 9s, pause: relay, when: {operations: 5}}\n"
                     "  - {at: 5s, for: 1s, pause: relay, when: {operations: 5, deadline: 2s}}\n")
    assert "exactly one of 'above', 'below'" in found["faults[1].when"]
    assert "'until'" in found["faults[2]"]
    assert "deadline" in found["faults[3]"]


def test_expect_effect_and_scope() -> None:
    scn = parse_scenario("name: x\nload: {duration: 30s}\nfaults:\n"
                         "  - {at: 1s, for: 1s, hop: api->postgres, toxic: latency, latency: 5,"
                         " expect_effect: false}\n"
                         "  - {at: 1s, for: 1s, hop: api->postgres, toxic: lost_ack,"
                         " scope: connection}\n")
    assert scn.faults[0].expect_effect is False
    assert scn.faults[0].scope == "exchange"  # pooled connections: roll per request
    assert scn.faults[1].scope == "connection"  # as written
    found = problems("name: x\nload: {duration: 30s}\nfaults:\n"
                     "  - {at: 1s, for: 1s, hop: api->postgres, toxic: connect_delay,"
                     " delay: 5, scope: exchange}\n")
    assert "does not apply" in found["faults[0]"]
    scn = parse_scenario("name: x\nload: {duration: 30s}\nfaults:\n"
                         "  - {at: 1s, for: 1s, hop: api->postgres, toxic: slow_close, delay: 5}\n")
    assert scn.faults[0].scope == "connection"


# ------------------------------------------------------------------ hostile YAML

LAUGHS = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


def _validate(tmp_path: Path, name: str, text: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / name
    path.write_text(text)
    return subprocess.run([sys.executable, "-m", "faultline", "validate", str(path)],
                          capture_output=True, text=True, timeout=60, cwd=REPO)


@pytest.mark.parametrize(("name", "text", "says"), [
    ("laughs.yaml", LAUGHS, "aliases (*a) are not allowed"),
    ("self.yaml", "a: &a [*a, *a]\n", "aliases (*a) are not allowed"),
    ("dupes.yaml", "name: x\nload: {duration: 10s}\nname: y\n", "duplicate key 'name' (first at line 1)"),
    ("deep.yaml", "a: " + "[" * 200 + "]" * 200 + "\n", "nested deeper than 40 levels"),
    ("huge.yaml", "name: x\ndescription: '" + "x" * 300_000 + "'\n", "larger than 256 KiB"),
])
def test_hostile_yaml_is_one_clear_line_and_exit_4(tmp_path: Path, name: str, text: str,
                                                    says: str) -> None:
    began = time.monotonic()
    res = _validate(tmp_path, name, text)
    assert res.returncode == 4, res.stdout + res.stderr
    assert says in res.stderr
    assert name in res.stderr
    assert "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert time.monotonic() - began < 20  # no expansion, no recursion


def test_a_folder_without_scenarios_says_so(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    res = subprocess.run([sys.executable, "-m", "faultline", "validate", str(tmp_path / "empty")],
                         capture_output=True, text=True, timeout=60, cwd=REPO)
    assert res.returncode == 4
    assert "no scenario files" in res.stderr


def test_aliases_are_refused_by_the_loader_too(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    path.write_text("name: &n x\nload: {duration: 10s}\ndescription: *n\n")
    with pytest.raises(ScenarioError, match="aliases"):
        load_scenario(path)


def test_a_profile_module_that_fails_is_named_not_a_traceback(tmp_path: Path) -> None:
    """A team's profile with a bad hop (negative traffic) raises in its own module: the
    scenario names the system and what went wrong."""
    (tmp_path / "badshop.py").write_text(
        "from faultline.system import Hop\n"
        "HOPS = (Hop('web->db', 'web_db', 'web', 'db', 'postgres', traffic=-2),)\n")
    scn = tmp_path / "s.yaml"
    scn.write_text("name: x\nsystem: badshop:PROFILE\nload: {duration: 10s}\n")
    res = subprocess.run([sys.executable, "-m", "faultline", "validate", str(scn)],
                         cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert res.returncode == 4, res.stdout + res.stderr
    out = res.stdout + res.stderr
    assert "Traceback" not in out
    assert "loading badshop failed: ValueError: hop web->db: traffic must be 0 or more" in out
