"""Checking from disk: the same verdicts as in memory, snapshots as directories, run
folders written by the synthetic generator, and ``faultline check``'s entry point."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from checks_helpers import fresh_run
from planted import PLANTED
from test_golden import GOLDEN, NEW_COUNTS, jsonable, same

from faultline.checks import (
    INVARIANTS,
    StateError,
    StateWriter,
    StoredRun,
    check_run,
    open_state,
    read_state,
    run_checks,
)
from faultline.checks.synthetic import PLANTS, SyntheticRun, main, synthetic_run, write_run_folder
from faultline.drill._store import RunFolder


def store(run: SyntheticRun, folder: RunFolder) -> None:
    """A run as the engine stores it: history lines, and the snapshot as a directory."""
    folder.path.mkdir(parents=True, exist_ok=True)
    with open(folder.history, "wb") as fh:
        for op in run.history:
            fh.write(orjson.dumps(op) + b"\n")
    with StateWriter(folder.final_state) as w:
        for name, value in run.state.items():
            if isinstance(value, list):
                w.table(name, iter(value))
            else:
                w.meta(name, value)


@pytest.mark.parametrize("name", list(PLANTED))
def test_checked_from_disk_a_planted_bug_gives_the_golden_results(name: str, tmp_path: Path) -> None:
    run = fresh_run()
    PLANTED[name](run)
    folder = RunFolder(tmp_path)
    store(run, folder)
    results = [jsonable(r.to_dict()) for r in check_run(folder.history, folder.final_state)]
    for got, want in zip(results, GOLDEN[name], strict=True):
        for extra in NEW_COUNTS.get(got["name"], ()):
            got["counts"].pop(extra, None)
        assert same(got, want), (got["name"], got, want)


def test_read_state_gives_back_the_dict(tmp_path: Path) -> None:
    run = fresh_run()
    store(run, RunFolder(tmp_path))
    assert read_state(tmp_path / RunFolder.FINAL) == jsonable(run.state)


def test_a_missing_table_is_unknown_and_an_empty_one_is_checked(tmp_path: Path) -> None:
    run = fresh_run()
    folder = RunFolder(tmp_path)
    store(run, folder)
    with StateWriter(folder.final_state) as w:  # rewritten without audit, with no dead letters
        for name, value in run.state.items():
            if name == "audit":
                continue
            if isinstance(value, list):
                w.table(name, [] if name == "dead_letters" else value)
            else:
                w.meta(name, value)
    results = {r.name: r for r in check_run(folder.history, folder.final_state)}
    assert results["audit_complete"].valid == "unknown"
    assert "audit" in results["audit_complete"].message
    assert results["outbox_delivered"].valid is True


def test_an_interrupted_snapshot_is_refused(tmp_path: Path) -> None:
    path = tmp_path / RunFolder.FINAL
    def interrupted() -> None:
        with StateWriter(path) as w:
            w.table("accounts", [{"id": "a", "balance": 0}])
            raise RuntimeError("the stack died mid-snapshot")

    with pytest.raises(RuntimeError):
        interrupted()
    with pytest.raises(StateError, match="not written to the end"):
        open_state(path)
    results = check_run(None, path, invariants=["conservation"])
    assert [r.valid for r in results] == ["unknown"]
    assert "cannot be read" in results[0].message


def test_a_stored_run_of_before_with_one_json_file_is_read(tmp_path: Path) -> None:
    run = fresh_run()
    PLANTED["double_charge"](run)
    folder = RunFolder(tmp_path)
    store(run, folder)
    legacy = folder.final_state.with_suffix(".json")
    legacy.write_text(json.dumps(run.state))
    for p in folder.final_state.iterdir():
        p.unlink()
    folder.final_state.rmdir()
    results = {r.name: r for r in check_run(folder.history, folder.final_state)}
    assert results["acknowledged_exactly_once"].errors[0]["type"] == "double_charge"


def test_a_torn_last_history_line_is_skipped_and_a_broken_one_is_not(tmp_path: Path) -> None:
    run = synthetic_run(200, seed=2, accounts=5)
    folder = RunFolder(tmp_path)
    store(run, folder)
    with open(folder.history, "ab") as fh:
        fh.write(b'{"type": "ok", "process": "w0')  # a killed writer
    ok = StoredRun.open(history=folder.history, state=folder.final_state).check()
    assert all(r.valid is True for r in ok), [r for r in ok if r.valid is not True]
    lines = folder.history.read_bytes().split(b"\n")
    lines[10] = b"{not json"
    folder.history.write_bytes(b"\n".join(lines))
    broken = {r.name: r for r in StoredRun.open(history=folder.history, state=folder.final_state).check()}
    assert broken["acknowledged_exactly_once"].valid == "unknown"
    assert "line 11" in broken["acknowledged_exactly_once"].message


def recheck_run_folder(path: Path) -> tuple[Any, Any, Any]:
    """``faultline check DIR``: the drill engine's judge on a stored run folder."""
    from faultline.drill import judge
    from faultline.scenario import load_scenario

    folder = RunFolder(path)
    scn = load_scenario(folder.scenario)
    judged = judge(folder, scn)
    return scn, judged.verdict, judged.run


def test_a_synthetic_run_folder_holds(tmp_path: Path) -> None:
    path = write_run_folder(tmp_path / "run", 3000, seed=5, accounts=30)
    _, v, run = recheck_run_folder(path)
    assert v.exit_code == 0, v.reason
    assert {r.name for r in v.results} >= set(INVARIANTS)
    assert run.timeseries()[0]["ok"] > 0
    assert set(run.phase_stats()) == {"before", "during", "after"}
    assert [w.name for w in run.fault_windows()] == ["latency@api->postgres"]
    acks = next(r for r in v.results if r.name == "acknowledged_exactly_once")
    assert acks.counts["transfers_without_key"] == 0  # the seed transfers are the baseline's


def test_the_written_folder_is_the_in_memory_run(tmp_path: Path) -> None:
    path = write_run_folder(tmp_path / "run", 800, seed=3, accounts=20)
    folder = RunFolder(path)
    run = synthetic_run(800, seed=3, accounts=20)
    assert read_state(folder.final_state) == jsonable(run.state)
    lines = [orjson.loads(x) for x in folder.history.read_bytes().splitlines()]
    assert lines == jsonable(run.history)


@pytest.mark.parametrize("plant", sorted(PLANTS))
def test_every_plant_of_the_generator_is_caught_from_disk(plant: str, tmp_path: Path) -> None:
    path = write_run_folder(tmp_path / "run", 1500, seed=4, accounts=20, plant={plant})
    _, v, _ = recheck_run_folder(path)
    caught = {r.name: r for r in v.results}[PLANTS[plant]]
    assert caught.valid is False
    assert plant in {e["type"] for e in caught.errors}
    assert v.exit_code == 1


def test_the_command_writes_a_folder(tmp_path: Path, capsys: Any) -> None:
    assert main(["--ops", "500", "--out", str(tmp_path / "r"), "--seed", "9",
                 "--plant", "double_charge"]) == 0
    assert "500" in capsys.readouterr().out
    _, v, _ = recheck_run_folder(tmp_path / "r")
    assert v.exit_code == 1


def test_in_memory_and_from_disk_agree_on_a_bigger_run(tmp_path: Path) -> None:
    run = synthetic_run(20_000, seed=11, accounts=200)
    run.state["transfers"].append(dict(run.state["transfers"][-1], id="t-x", idempotency_key="k-x"))
    folder = RunFolder(tmp_path)
    store(run, folder)
    memory = [r.to_dict() for r in run_checks(None, run.history, run.state)]
    disk = [r.to_dict() for r in check_run(folder.history, folder.final_state)]
    assert jsonable(disk) == jsonable(memory)


def test_lines_across_blocks_and_longer_than_a_block_are_read_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from faultline.checks import _source

    run = synthetic_run(1500, seed=6, accounts=10)
    run.history[8]["value"]["note"] = "x" * 5000  # one line longer than a block
    PLANTED["tampered_audit_row"](run)  # type: ignore[arg-type]
    folder = RunFolder(tmp_path)
    store(run, folder)
    memory = [r.to_dict() for r in run_checks(None, run.history, run.state)]
    monkeypatch.setattr(_source, "BLOCK_BYTES", 997)
    disk = [r.to_dict() for r in check_run(folder.history, folder.final_state)]
    assert jsonable(disk) == jsonable(memory)
    assert {r["name"]: r["valid"] for r in disk}["audit_complete"] is False


def test_a_stored_history_can_still_be_walked_line_by_line(tmp_path: Path) -> None:
    run = synthetic_run(300, seed=1, accounts=5)
    folder = RunFolder(tmp_path)
    store(run, folder)
    opened = StoredRun.open(history=folder.history, state=folder.final_state)
    assert list(opened.history) == jsonable(run.history)


@pytest.mark.parametrize("name", ["clean", "double_charge", "tampered_audit_row", "unbalanced_entries",
                                  "replay_mismatch", "event_not_applied"])
def test_read_on_two_cores_a_run_gives_the_golden_results(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from faultline.checks import _parallel

    monkeypatch.setattr(_parallel, "PARALLEL_MIN_BYTES", 0)  # every run is "big"
    run = fresh_run()
    PLANTED[name](run)
    folder = RunFolder(tmp_path)
    store(run, folder)
    opened = StoredRun.open(history=folder.history, state=folder.final_state)
    _parallel.prefetch(opened.history, opened.state, opened.context)
    assert {"history_index", "audit_chain"} <= set(opened.context.cache)  # from the helpers
    results = [jsonable(r.to_dict()) for r in opened.check()]
    for got, want in zip(results, GOLDEN[name], strict=True):
        for extra in NEW_COUNTS.get(got["name"], ()):
            got["counts"].pop(extra, None)
        assert same(got, want), (got["name"], got, want)
