"""Space files: narrowing, weights, globs, and errors that name the file, line and field
(exit 4 from the CLI, never a traceback)."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from faultline.explore import DrillGenerator, FaultSpace, SpaceError, load_space, parse_space
from faultline.system import load_profile

PAYMENTS = load_profile("payments")
REPO = Path(__file__).resolve().parents[3]


def space(text: str) -> FaultSpace:
    return parse_space(text, "space.yaml", FaultSpace.from_profile(PAYMENTS))


def faults(s: FaultSpace, n: int = 300, seed: int = 4) -> list[dict]:
    generator = DrillGenerator(s, seed)
    return [f for i in range(1, n + 1) for f in generator.draw(i).faults]


def problems(text: str) -> dict[str, tuple[int | None, str]]:
    with pytest.raises(SpaceError) as info:
        space(text)
    assert "Traceback" not in str(info.value)
    return {p.field: (p.line, p.message) for p in info.value.problems}


def test_an_empty_file_is_the_default_space() -> None:
    assert space("").describe() == FaultSpace.from_profile(PAYMENTS).describe()
    assert space("# nothing\n").kinds == FaultSpace.from_profile(PAYMENTS).kinds


def test_a_map_narrows_to_what_it_names() -> None:
    s = space("faults:\n  kinds: {toxic: 1}\n  hops: {api->postgres: 1}\n"
              "  toxics: {lost_ack: 1, down: 1}\n  count: {1: 1}\n")
    drawn = faults(s, 100)
    assert {(f["hop"], f["toxic"]) for f in drawn} == {("api->postgres", "lost_ack"),
                                                       ("api->postgres", "down")}
    assert s.patterns == {}  # not among the kinds asked for


def test_globs_and_the_rest() -> None:
    s = space("faults:\n  kinds: {kill: 1, pause: 1}\n  services: {worker-*: 1}\n")
    assert {f.get("kill") or f.get("pause") for f in faults(s, 100)} == {"worker-1",
                                                                          "worker-2"}
    kept = space("faults:\n  services: {postgres: 0, '*': 1}\n")
    assert "postgres" not in kept.services
    assert "redis" in kept.services


def test_weights_shift_the_draws() -> None:
    heavy = space("faults:\n  kinds: {toxic: 1}\n  hops: {api->postgres: 20, '*': 1}\n")
    hops = Counter(f["hop"] for f in faults(heavy, 200))
    others = max(n for h, n in hops.items() if h != "api->postgres")
    assert hops["api->postgres"] > 5 * others
    assert len(hops) == len(PAYMENTS.hops)  # '*' kept the rest


def test_load_ranges_params_attributes_and_settle() -> None:
    s = space("load:\n  users: [3, 4]\n  duration: [6s, 8s]\n  profiles: {steady: 1}\n"
              "  params: {races: [0.1, 0.2]}\nfaults:\n  kinds: {toxic: 1}\n"
              "  toxics: {latency: 1}\n  attributes: {latency: {latency: [50ms, 80ms]}}\n"
              "settle: 7s\n")
    generator = DrillGenerator(s, 1)
    for i in range(1, 60):
        data = generator.draw(i).data
        assert 3 <= data["load"]["users"] <= 4
        assert 6 <= data["load"]["duration"] <= 8
        assert data["load"]["profile"] == "steady"
        assert 0.1 <= data["load"]["params"]["races"] <= 0.2
        assert data["settle"] == 7
        for f in data["faults"]:
            assert 50 <= f["latency"] <= 80


def test_slos_and_invariants_go_into_every_drill() -> None:
    s = space("slos:\n  - {phase: after, error_rate: 0.05, recover_within: 10s}\n"
              "invariants: [conservation, outbox_delivered]\n")
    data = DrillGenerator(s, 1).draw(1).data
    assert data["invariants"] == ["conservation", "outbox_delivered"]
    assert data["slos"][0]["recover_within"] == 10


def test_errors_name_file_line_and_field() -> None:
    found = problems("load:\n  users: [9, 3]\n  durations: 5s\n"
                     "faults:\n  hops: {api->postgre: 1}\n  toxics: {latency: -1}\n"
                     "  attributes: {latency: {latenc: [1, 2]}}\n  patterns: {flap: 1}\n"
                     "invariants: [conservation, no_such]\n")
    assert found["load.users"][0] == 2
    assert "low end (9)" in found["load.users"][1]
    assert found["load.durations"][0] == 3
    assert "unknown field" in found["load.durations"][1]
    assert found["faults.hops.api->postgre"][0] == 5
    assert "matches no hop of system payments" in found["faults.hops.api->postgre"][1]
    assert found["faults.toxics.latency"][0] == 6
    assert "not an attribute of a latency toxic" in found[
        "faults.attributes.latency.latenc"][1]
    assert "matches no pattern" in found["faults.patterns.flap"][1]
    assert "'no_such' is not an invariant" in found["invariants[1]"][1]


def test_a_space_with_nothing_left_to_draw_is_an_error() -> None:
    found = problems("faults:\n  kinds: {toxic: 1}\n  hops: {api->postgres: 1}\n"
                     "  toxics: {http_error: 1}\n")  # http_error fits no postgres hop
    assert "nothing left to draw" in found["faults"][1]
    assert "system" in problems("system: bank\n")


def test_hostile_yaml_is_refused_with_its_line() -> None:
    alias = problems("a: &x {b: 1}\nfaults: *x\n")
    assert any("aliases" in m for _, m in alias.values())
    dup = problems("faults:\n  count: {1: 1}\n  count: {2: 1}\n")
    assert any(line == 3 and "duplicate key" in m for line, m in dup.values())
    assert "expected a mapping" in problems("- 1\n- 2\n")[""][1]


def test_load_space_reads_a_file(tmp_path: Path) -> None:
    path = tmp_path / "space.yaml"
    path.write_text("faults:\n  hops: {nope: 1}\n")
    with pytest.raises(SpaceError, match=r"space.yaml:2: faults.hops.nope"):
        load_space(path, FaultSpace.from_profile(PAYMENTS))
    with pytest.raises(SpaceError, match="cannot read"):
        load_space(tmp_path / "missing.yaml", FaultSpace.from_profile(PAYMENTS))


def test_cli_argument_and_space_errors_exit_4_without_a_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "space.yaml"
    bad.write_text("faults:\n  toxics: {lost_akc: 1}\n")
    cases = [
        (["--space", str(bad)], f"{bad}:2: faults.toxics.lost_akc"),
        (["--space", str(tmp_path / "none.yaml")], "cannot read"),
        (["--budget", "0"], "--budget must be at least 1"),
        (["--tries", "0"], "--tries must be at least 1"),
        (["--time", "soon"], "--time: expected a duration"),
        (["--budget", "2", "--time", "1m"], "not allowed with"),
        (["--bugs", "no_such_bug"], "unknown bug(s) no_such_bug"),
        (["--system", "no_such_system"], "unknown system"),
        (["--seed", "x"], "invalid int value"),
    ]
    for args, expected in cases:
        res = subprocess.run([sys.executable, "-m", "faultline", "explore", *args,
                              "--runs-dir", str(tmp_path / "runs")], cwd=tmp_path,
                             capture_output=True, text=True, timeout=60)
        assert res.returncode == 4, (args, res.stderr)
        assert expected in res.stderr, (args, res.stderr)
        assert "Traceback" not in res.stderr + res.stdout
    assert not (tmp_path / "runs").exists()  # nothing started, nothing written
