"""``faultline stack up --detach / status / down`` end to end, and the state-file sweep
on a fake stack (no payment services needed for that part)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from faultline.stack._state import StackState, group_alive, sweep

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def state_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setenv("FAULTLINE_STATE_DIR", str(tmp_path / "state"))
    return {**os.environ, "FAULTLINE_STATE_DIR": str(tmp_path / "state")}


def faultline(*args: str, env: dict[str, str], timeout: float = 120,
              cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "faultline", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_sweep_ends_the_groups_and_dirs_of_a_dead_owner(state_env: dict[str, str],
                                                        tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    child = subprocess.Popen(["sleep", "60"], start_new_session=True)
    leftover = tmp_path / "leftover"
    leftover.mkdir()
    state = StackState(owner_pid=dead.pid, owner_start=None,
                       groups={"worker-1": child.pid}, temp_dirs=[str(leftover)])
    state.save()
    alive_owner = StackState(groups={"x": child.pid})  # ours: never swept
    alive_owner.save()
    done = sweep()
    child.wait(timeout=10)
    assert len(done) == 1
    assert state.id in done[0]
    assert not group_alive(child.pid)
    assert not leftover.exists()
    assert not state.path.exists()
    assert alive_owner.path.exists()
    alive_owner.remove()


def test_a_decoy_with_a_recorded_group_id_is_not_killed(state_env: dict[str, str]) -> None:
    """A pid reused by another process (here: a recorded group whose leader now has
    another start time) is never signalled by the sweep."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    decoy = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        state = StackState(owner_pid=dead.pid, owner_start=None,
                           groups={"worker-1": decoy.pid}, starts={str(decoy.pid): "1"})
        state.save()
        sweep()
        time.sleep(0.5)
        assert decoy.poll() is None, "a process that is not the stack's was signalled"
        assert not state.path.exists()
    finally:
        decoy.kill()


def test_a_reused_owner_pid_does_not_count_as_alive(state_env: dict[str, str]) -> None:
    state = StackState(owner_pid=os.getpid(), owner_start="1")  # our pid, another start time
    assert not state.owner_alive()
    assert StackState().owner_alive()


def test_status_and_down_with_nothing_running(state_env: dict[str, str]) -> None:
    res = faultline("stack", "status", env=state_env)
    assert res.returncode == 0
    assert "no stack running" in res.stdout
    res = faultline("stack", "down", env=state_env)
    assert res.returncode == 0
    assert "no detached stack" in res.stdout


def test_no_subcommand_is_a_usage_error(state_env: dict[str, str]) -> None:
    res = faultline("stack", env=state_env)
    assert res.returncode == 4
    assert "Traceback" not in res.stderr


@pytest.mark.stack
@pytest.mark.slow
def test_up_detach_status_down(state_env: dict[str, str], tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    res = faultline("stack", "up", "--detach", "--run-dir", str(run_dir),
                    env=state_env, timeout=200)
    assert res.returncode == 0, res.stderr + res.stdout
    info = json.loads((run_dir / "stack-ready.json").read_text())
    states = StackState.all()
    try:
        assert len(states) == 1
        assert states[0].detached
        assert states[0].owner_alive()
        res = faultline("stack", "status", env=state_env)
        assert "running" in res.stdout
        assert info["base_url"] in res.stdout
        assert (run_dir / "stack-ready.json").stat().st_mode & 0o777 == 0o600
        # another checkout's stacks are not this directory's business
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        res = faultline("stack", "status", env=state_env, cwd=elsewhere)
        assert "no stack running from this directory" in res.stdout
        res = faultline("stack", "down", env=state_env, cwd=elsewhere)
        assert "no detached stack was running from this directory" in res.stdout
        assert states[0].owner_alive()
        assert info["base_url"] in faultline("stack", "status", "--all", env=state_env,
                                             cwd=elsewhere).stdout
        res = faultline("stack", "down", env=state_env)
        assert res.returncode == 0, res.stderr
        assert f"stopped stack {states[0].id}" in res.stdout
        deadline = time.monotonic() + 10
        while any(group_alive(g) for g in states[0].groups.values()):
            assert time.monotonic() < deadline, "processes left after down"
            time.sleep(0.1)
        assert not any(Path(d).exists() for d in states[0].temp_dirs)
        assert (run_dir / "logs" / "postgres.log").exists()
        assert StackState.all() == []
    finally:
        for st in StackState.all():
            if st.owner_alive():
                os.kill(st.owner_pid, 9)
        sweep()


@pytest.mark.stack
@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_foreground_up_stops_everything_on_ctrl_c_or_sigterm(
        state_env: dict[str, str], tmp_path: Path, sig: int) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "faultline", "stack", "up", "--run-dir",
         str(tmp_path / "run")], cwd=REPO, env=state_env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("system"), first + (proc.stderr.read() if proc.stderr else "")
        states = StackState.all()
        assert len(states) == 1
        proc.send_signal(sig)
        assert proc.wait(timeout=60) == 0
        assert not any(group_alive(g) for g in states[0].groups.values())
        assert not any(Path(d).exists() for d in states[0].temp_dirs)
        assert StackState.all() == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        sweep()
