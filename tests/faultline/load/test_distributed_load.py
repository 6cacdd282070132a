"""Locust master and remote workers for real: separate processes over TCP on 127.0.0.1.

The workers get no history directory (as on another machine) and a skewed clock
(``FAULTLINE_CLOCK_SKEW_NS``, test only): their history must still reach the master's
run directory, complete and well-formed, on the master's clock. The stand-in api
(``stub_api.py``) records when each request arrived on this machine's clock, which is
the master's: a translated ``invoke`` must land just before its request arrived.
"""

from __future__ import annotations

import json
import os
import re
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from faultline.history import merge_histories
from faultline.load import LoadError, LocustMaster, LocustRun
from faultline.system import load_profile

from .stub_api import STUB_PROFILE, StubApi

REPO = Path(__file__).resolve().parents[3]
DRILLS = REPO / "tests" / "faultline" / "drill" / "drills"
MS = 1_000_000
HOUR = 3600 * 10**9
PAYMENTS = load_profile("payments")
LOCUSTFILE = PAYMENTS.workload.locustfile
MIX = dict(PAYMENTS.workload.operations)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _load_worker(port: int, skew_ns: int, connect_timeout: float = 30) -> subprocess.Popen[str]:
    """``faultline load-worker`` as on a load machine: no FAULTLINE_* of this process
    (no history directory), its own clock."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FAULTLINE_", "LOCUST_"))}
    env["FAULTLINE_CLOCK_SKEW_NS"] = str(skew_ns)
    return subprocess.Popen(
        [sys.executable, "-m", "faultline", "load-worker", "--master-host", "127.0.0.1",
         "--master-port", str(port), "--connect-timeout", str(connect_timeout)],
        cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True)


@pytest.fixture
def workers() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)


def _check_pairs(history: list[dict[str, Any]]) -> None:
    """invoke, then exactly one completion, per process; nothing left open."""
    open_ops: dict[str, dict[str, Any]] = {}
    for h in history:
        if h["process"] == "nemesis":
            continue
        if h["type"] == "invoke":
            assert h["process"] not in open_ops, h
            open_ops[h["process"]] = h
        else:
            invoke = open_ops.pop(h["process"])
            assert (invoke["f"], invoke.get("key")) == (h["f"], h.get("key"))
            assert invoke["time"] <= h["time"]
    assert not open_ops, f"{len(open_ops)} operations without a completion"


def test_remote_workers_history_reaches_the_master_on_its_clock(
        tmp_path: Path, workers: list[subprocess.Popen[str]]) -> None:
    port = _free_port()
    # late in the load, transfers hang: the workers are mid-operation when it stops
    with StubApi(hang_after=150) as api:
        before = time.monotonic_ns()
        run = LocustRun(host=api.url, locustfile=LOCUSTFILE,
                        load={"profile": "steady", "users": 4, "duration": 4, "mix": MIX,
                              "params": {"races": 0}},
                        stack_file=StubApi.write_stack(tmp_path / "stack.json"),
                        history_dir=tmp_path / "load", log_file=tmp_path / "master.log",
                        master=LocustMaster(expect_workers=2, bind_port=port,
                                            workers_timeout=30)).start()
        try:
            # one worker's clock an hour behind the master's, the other two hours ahead
            workers += [_load_worker(port, -HOUR), _load_worker(port, 2 * HOUR)]
            run.wait_started(timeout=30)
            assert run.wait() == 0, (tmp_path / "master.log").read_text()[-3000:]
        finally:
            run.stop()
        after = time.monotonic_ns()
    for proc in workers:
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0, out
        assert "the master ended the drill" in out
    files = run.history_files()
    assert len(files) == 2  # one per remote worker, none of the master's own
    per_file = [{json.loads(x)["process"] for x in f.read_text().splitlines()} for f in files]
    assert all(per_file)
    assert not per_file[0] & per_file[1]  # process names unique across machines
    history = merge_histories(files)
    assert isinstance(history, list)
    assert all(re.fullmatch(r"w\d+-\w+-p\d+-u\d+b?", h["process"]) for h in history)
    _check_pairs(history)  # the lines written while the workers stopped came too
    assert api.hung
    assert any((h.get("error") or "").startswith("stopped") for h in history)
    assert all(before <= h["time"] <= after for h in history)  # hours off if untranslated
    # each transfer's invoke lands just before its request reached the api
    gaps = [(api.arrivals[h["key"]][0] - h["time"]) / MS
            for h in history if h["type"] == "invoke" and h["f"] == "transfer"]
    assert len(gaps) > 20
    assert min(gaps) > -5, gaps
    assert statistics.median(gaps) < 20, gaps
    status = json.loads((tmp_path / "load" / "workers.json").read_text())
    offsets = sorted(w["offset_ns"] for w in status["remote"].values())
    assert abs(offsets[0] + 2 * HOUR) < 50 * MS
    assert abs(offsets[1] - HOUR) < 50 * MS
    assert all(w["final"] for w in status["remote"].values())


def test_a_worker_that_cannot_reach_its_master_fails_clearly(
        workers: list[subprocess.Popen[str]]) -> None:
    port = _free_port()  # nobody listens there
    began = time.monotonic()
    workers.append(_load_worker(port, 0, connect_timeout=3))
    out, _ = workers[0].communicate(timeout=60)
    assert workers[0].returncode == 4, out
    assert f"could not reach the Locust master at 127.0.0.1:{port} within 3s" in out
    assert "Traceback" not in out
    assert time.monotonic() - began < 20


def test_a_master_whose_workers_never_come(tmp_path: Path) -> None:
    run = LocustRun(host="http://127.0.0.1:1", locustfile=LOCUSTFILE,
                    load={"users": 1, "duration": 5, "mix": MIX},
                    stack_file=StubApi.write_stack(tmp_path / "stack.json"),
                    history_dir=tmp_path / "load", log_file=tmp_path / "master.log",
                    master=LocustMaster(expect_workers=2, bind_port=_free_port(),
                                        workers_timeout=2)).start()
    try:
        with pytest.raises(LoadError, match=r"only 0 of 2 load worker\(s\) connected .* "
                                            r"within 2s; start them .*faultline load-worker"):
            run.wait_started(timeout=20)
    finally:
        run.stop()
    assert not run.running()


def test_a_master_that_cannot_bind_says_why(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        run = LocustRun(host="http://127.0.0.1:1", locustfile=LOCUSTFILE,
                    load={"users": 1, "duration": 5, "mix": MIX},
                        stack_file=StubApi.write_stack(tmp_path / "stack.json"),
                        history_dir=tmp_path / "load", log_file=tmp_path / "master.log",
                        master=LocustMaster(bind_port=taken.getsockname()[1],
                                            workers_timeout=30)).start()
        try:
            with pytest.raises(LoadError, match=r"ended \(exit 1\) before its workers came: "
                                                r".*Address already in use"):
                run.wait_started(timeout=20)
        finally:
            run.stop()


def test_master_flags_of_faultline_run(tmp_path: Path) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "faultline", "run", *args,
                               "--runs-dir", str(tmp_path)], cwd=REPO, capture_output=True,
                              text=True, timeout=60)

    scenario = str(DRILLS / "lost-ack.yaml")
    alone = cli(scenario, "--expect-workers", "2")
    assert alone.returncode == 4
    assert "--expect-workers only go(es) with --master" in alone.stderr
    both = cli(scenario, "--master", "--workers", "2")
    assert both.returncode == 4
    assert "--workers runs local Locust processes" in both.stderr
    bad = cli(scenario, "--master", "--master-bind-port", "70000")
    assert bad.returncode == 4
    assert "not a port" in bad.stderr
    assert not list(tmp_path.iterdir())  # refused before anything started


def test_drill_with_a_master_and_no_workers_exits_4(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The whole runner on a stand-in system (the stub api behind its own profile)."""
    from faultline.drill import DrillOptions, run_drill

    scenario = tmp_path / "no-workers.yaml"
    scenario.write_text("name: no-workers\ndescription: master without workers\n"
                        "system: stub\nstack: external\nload: {users: 2, duration: 5s}\n")
    with StubApi() as api:
        monkeypatch.setenv("FAULTLINE_BASE_URL", api.url)
        outcome = run_drill(scenario, DrillOptions(
            runs_dir=tmp_path / "runs", progress=False, profile=STUB_PROFILE,
            master=LocustMaster(expect_workers=1, bind_port=_free_port(), workers_timeout=2)))
    assert outcome.exit_code == 4, outcome.summary
    assert "only 0 of 1 load worker(s) connected" in outcome.summary
    assert "--master --expect-workers 1" in outcome.verdict.info["replay"]


@pytest.mark.stack
@pytest.mark.slow
def test_drill_on_the_local_stack_with_a_remote_worker(
        tmp_path: Path, workers: list[subprocess.Popen[str]]) -> None:
    """``faultline run --master`` + one ``faultline load-worker`` with a clock an hour off:
    the faults and the worker's operations end up on one clock, the master decides."""
    from faultline.drill import DrillOptions, run_drill

    port = _free_port()
    # started first: the worker waits for the master (stack start and probe come first)
    workers.append(_load_worker(port, -HOUR, connect_timeout=120))
    before = time.monotonic_ns()
    outcome = run_drill(DRILLS / "lost-ack.yaml", DrillOptions(
        runs_dir=tmp_path, progress=False,
        master=LocustMaster(expect_workers=1, bind_port=port, workers_timeout=120)))
    after = time.monotonic_ns()
    assert outcome.exit_code == 0, outcome.summary
    out, _ = workers[0].communicate(timeout=60)
    assert workers[0].returncode == 0, out
    assert "the master ended the drill" in out
    run = outcome.run_dir
    assert run is not None
    assert json.loads((run / "verdict.json").read_text())["exit_code"] == 0
    history = [json.loads(x) for x in (run / "history.jsonl").read_text().splitlines()]
    ops = [h for h in history if h["process"] != "nemesis"]
    assert len(ops) > 100
    assert all(re.fullmatch(r"w0-\w+-p\d+-u\d+b?", h["process"]) for h in ops)
    _check_pairs(history)
    start, stop = (h["time"] for h in history if h["process"] == "nemesis")
    assert all(before < h["time"] < after for h in ops)
    # operations before, during and after the fault window, on the nemesis's clock
    assert any(h["time"] < start for h in ops)
    assert any(start < h["time"] < stop for h in ops)
    assert any(h["time"] > stop for h in ops)
