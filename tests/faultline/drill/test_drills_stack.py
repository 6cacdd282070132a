"""Short drills against the real local stack: the correct stack holds, every deliberate
bug is caught by the right checker, and a SIGKILLed run is swept by the next one.

Slow by nature (each drill: stack start, steady-state probe, 12-16 s of load, settle):
about 25-40 s each. The SIGKILL test drills an *external* stack (a detached ``faultline
stack up``), whose processes are not the runner's and outlive it, as a compose or a
team's own stack would: the next run must heal the killed run's faults on that stack's
proxy, end the killed run's own processes (its Locust), and leave the stack alone.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from faultline.drill import DrillOptions, DrillOutcome, run_drill
from faultline.proxy.client import ProxyClient

pytestmark = [pytest.mark.stack, pytest.mark.slow]

HERE = Path(__file__).resolve().parent
DRILLS = HERE / "drills"
REPO = HERE.parents[2]

#: bug -> (drill, the checker that must name it); the table of docs/drill-engine-bugs.md
BUG_MATRIX: dict[str, tuple[str, str]] = {
    "ack_before_commit": ("pg-flap", "acknowledged_exactly_once"),
    "idempotency_not_atomic": ("lost-ack", "acknowledged_exactly_once"),
    "outbox_outside_tx": ("pg-flap", "outbox_delivered"),
    "worker_ack_before_apply": ("worker-kill", "outbox_delivered"),
    "non_negative_in_python": ("latency", "non_negative"),
    "relay_drops_on_error": ("redis-restart", "outbox_delivered"),
    "audit_chain_skip": ("lost-ack", "audit_complete"),
    "projection_double_apply": ("worker-pause", "projection_converges"),
}


#: one drill per bug: two races switched on together can mask each other (tried:
#: idempotency_not_atomic with audit_chain_skip left the chain intact in one run)
GROUPS = [(bug,) for bug in sorted(BUG_MATRIX)]


def _drill(name: str, tmp_path: Path, bugs: list[str] | None = None) -> DrillOutcome:
    return run_drill(DRILLS / f"{name}.yaml",
                     DrillOptions(runs_dir=tmp_path, bugs=bugs or [], progress=False))


def _failed(outcome: DrillOutcome) -> set[str]:
    return {r.name for r in outcome.verdict.results if r.valid is False}


@pytest.mark.parametrize("bugs", GROUPS, ids=["+".join(g) for g in GROUPS])
def test_each_bug_is_caught(bugs: tuple[str, ...], tmp_path: Path) -> None:
    [drill] = {BUG_MATRIX[bug][0] for bug in bugs}
    outcome = _drill(drill, tmp_path, list(bugs))
    assert outcome.exit_code == 1, f"{bugs} not caught by {drill}:\n{outcome.summary}"
    for bug in bugs:
        assert BUG_MATRIX[bug][1] in _failed(outcome), f"{bug}:\n{outcome.summary}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie of ours is dead for this purpose
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ")[1][0] != "Z"
    except OSError:
        return False
    return True


@pytest.fixture
def external_stack(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A payment stack that is not the runner's: a detached ``faultline stack up``."""
    run_dir = tmp_path / "external"
    env = {**os.environ, "FAULTLINE_STATE_DIR": str(tmp_path / "state")}
    up = subprocess.run([sys.executable, "-m", "faultline", "stack", "up", "--detach",
                         "--run-dir", str(run_dir)], cwd=tmp_path, env=env,
                        capture_output=True, text=True, timeout=300)
    assert up.returncode == 0, up.stdout + up.stderr
    info = json.loads((run_dir / "stack-ready.json").read_text())
    try:
        yield {**info, "stack_json": str(run_dir / "stack-ready.json")}
    finally:
        subprocess.run([sys.executable, "-m", "faultline", "stack", "down"], cwd=tmp_path,
                       env=env, capture_output=True, timeout=120)


def test_sigkilled_run_is_swept_by_the_next(external_stack: dict[str, Any], tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    env = {**os.environ, "FAULTLINE_STACK_JSON": external_stack["stack_json"]}
    victim = subprocess.Popen(
        [sys.executable, "-m", "faultline", "run", str(DRILLS / "long-fault.yaml"),
         "--target", "external", "--runs-dir", str(runs)], cwd=tmp_path, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    registry = runs / ".active" / f"{victim.pid}.json"
    proxy = ProxyClient(external_stack["proxy_url"])
    deadline = time.monotonic() + 120
    entry: dict[str, Any] = {}
    while time.monotonic() < deadline:
        if registry.exists() and proxy.toxics("api_postgres"):
            entry = json.loads(registry.read_text())
            if entry.get("groups"):
                break
        time.sleep(0.2)
    else:
        victim.kill()
        pytest.fail("the victim drill never injected its fault")
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=10)
    stack_pids = [int(p) for p in external_stack["pids"].values()]
    assert all(_alive(p) for p in stack_pids)
    # the next run sweeps before anything else (this one then fails on its own: no stack)
    nxt = subprocess.run(
        [sys.executable, "-m", "faultline", "run", str(DRILLS / "lost-ack.yaml"), "--target",
         "external", "--runs-dir", str(runs)], cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if k != "FAULTLINE_STACK_JSON"},
        capture_output=True, text=True, timeout=120)
    assert "swept a killed run" in nxt.stderr, nxt.stderr
    assert proxy.toxics("api_postgres") == []  # the killed run's fault is healed
    locust = [int(g["pid"]) for g in entry["groups"]]
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and any(_alive(p) for p in locust):
        time.sleep(0.2)
    assert not [p for p in locust if _alive(p)], "the killed run's Locust is left"
    assert all(_alive(p) for p in stack_pids), "the sweep touched a stack that is not its own"
    assert not registry.exists()


def test_faultline_run_on_the_local_launcher(tmp_path: Path) -> None:
    """The real thing: ``faultline run`` on the correct stack, from a directory other than
    the repository with a relative ``--runs-dir`` (what broke ``make drill`` from a fresh
    clone: Locust runs in another directory), and everything a run folder must hold."""
    junit = tmp_path / "drill.xml"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    res = subprocess.run(
        [sys.executable, "-m", "faultline", "run", str(DRILLS / "lost-ack.yaml"),
         "--runs-dir", "my-runs", "--junit", str(junit)],
        cwd=elsewhere, capture_output=True, text=True, timeout=400)
    assert res.returncode == 0, res.stdout + res.stderr[-3000:]
    assert "HELD" in res.stdout
    assert "replay: faultline run" in res.stdout
    assert "<testsuite" in junit.read_text()
    [run] = list((elsewhere / "my-runs").glob("*-t-lost-ack"))
    assert not list((elsewhere / "my-runs" / ".active").glob("*.json"))
    for name in ("scenario.yaml", "seed", "history.jsonl", "final_state", "verdict.json",
                 "junit.xml", "report.html", "metrics.jsonl", "drill.json",
                 "proxy-events.jsonl"):
        assert (run / name).exists(), name
    assert (run / "stack.json").stat().st_mode & 0o777 == 0o600  # it holds API keys
    verdict = json.loads((run / "verdict.json").read_text())
    assert verdict["exit_code"] == 0
    faults = verdict["faults"]
    assert [f["status"] for f in faults] == ["fired"]
    assert faults[0]["effect"]["replies_dropped"] > 0, faults
    history = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    assert [h["index"] for h in history] == list(range(len(history)))
    nemesis = [h for h in history if h["process"] == "nemesis"]
    assert [h["f"] for h in nemesis] == ["start", "stop"]
    # invoke then exactly one completion per process, in order
    open_ops: dict[str, dict[str, Any]] = {}
    for h in history:
        if h["process"] == "nemesis":
            continue
        if h["type"] == "invoke":
            assert h["process"] not in open_ops
            open_ops[h["process"]] = h
        else:
            assert open_ops.pop(h["process"])["f"] == h["f"]
    assert not open_ops
    fs = {h["f"] for h in history}
    assert {"transfer", "replay", "replay_diff", "balance", "statement"} <= fs
    # faultline check re-derives the same verdict from the stored run
    res = subprocess.run([sys.executable, "-m", "faultline", "check", str(run)], cwd=REPO,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_and_sigterm_print_store_and_return_the_same_code(tmp_path: Path, sig: int) -> None:
    """An interrupted drill says so (exit 130 everywhere), heals, and leaves nothing."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "faultline", "run", str(DRILLS / "long-fault.yaml"),
         "--runs-dir", str(tmp_path)], cwd=REPO, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
        # as from a terminal: a suite started as a background job ignores SIGINT, and
        # an ignored SIGINT is inherited (Python then installs no KeyboardInterrupt)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while not any(p.read_text() for p in tmp_path.glob("*/nemesis.jsonl")):
        assert time.monotonic() < deadline, "the fault never started"
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.2)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, out + err[-2000:]
    assert "INTERRUPTED (exit 130)" in out
    [run] = [p.parent for p in tmp_path.glob("*/verdict.json")]
    verdict = json.loads((run / "verdict.json").read_text())
    assert (verdict["exit_code"], verdict["status"]) == (130, "interrupted")
    assert "Traceback" not in err
    assert not list((tmp_path / ".active").glob("*.json"))  # nothing left to sweep
