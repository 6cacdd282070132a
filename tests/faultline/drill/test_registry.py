"""The run registry: a SIGKILLed runner's processes are ended by the next run, and only
those still provably its own (a reused pid belongs to someone else)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from faultline.drill._registry import RunRegistry, boot_id, identity


def _sleeper() -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                            start_new_session=True)


def _dead_runner() -> dict[str, object]:
    """The identity of a process that has exited (a runner killed with SIGKILL)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    ident = identity(proc.pid)
    proc.wait()
    assert ident is not None
    return ident


def _record(registry: Path, name: str, **data: object) -> Path:
    registry.mkdir(parents=True, exist_ok=True)
    path = registry / f"{name}.json"
    path.write_text(json.dumps(data))
    return path


def _gone(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> bool:
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        return False
    return True


def test_a_dead_runners_own_process_group_is_ended(tmp_path: Path) -> None:
    own = _sleeper()
    try:
        entry = _record(tmp_path, "1", runner=_dead_runner(), boot=boot_id(),
                        groups=[identity(own.pid)], run_dir="run-1")
        done = RunRegistry(tmp_path).sweep()
        assert _gone(own)
        assert any("ended 1 process group" in line for line in done)
        assert not entry.exists()
    finally:
        own.kill()


def test_a_decoy_with_a_recorded_pid_is_not_killed(tmp_path: Path) -> None:
    decoy = _sleeper()
    try:
        ident = identity(decoy.pid)
        assert ident is not None
        # the recorded process had that pid once; the decoy started later (pid reuse)
        stale = {**ident, "start": str(int(ident["start"]) - 1000)}
        other_cmd = {**ident, "cmd": "locust -f somewhere"}
        _record(tmp_path, "1", runner=_dead_runner(), boot=boot_id(),
                groups=[stale, other_cmd], run_dir="run-1")
        done = RunRegistry(tmp_path).sweep()
        time.sleep(1.5)
        assert decoy.poll() is None, "a process that is not the dead run's was signalled"
        assert any("whose pid now belongs to another process" in line for line in done)
    finally:
        decoy.kill()


def test_records_of_another_boot_are_dropped_unread(tmp_path: Path) -> None:
    decoy = _sleeper()
    try:
        entry = _record(tmp_path, "1", runner=_dead_runner(), boot="another-boot",
                        groups=[identity(decoy.pid)])
        assert RunRegistry(tmp_path).sweep() == []
        assert decoy.poll() is None
        assert not entry.exists()
    finally:
        decoy.kill()


def test_a_live_runner_is_left_alone(tmp_path: Path) -> None:
    runner, child = _sleeper(), _sleeper()
    try:
        entry = _record(tmp_path, str(runner.pid), runner=identity(runner.pid),
                        boot=boot_id(), groups=[identity(child.pid)])
        assert RunRegistry(tmp_path).sweep() == []
        assert child.poll() is None
        assert entry.exists()
    finally:
        runner.kill()
        child.kill()


def test_register_and_unregister(tmp_path: Path) -> None:
    reg = RunRegistry(tmp_path)
    reg.register(run_dir="r", proxy_url="http://127.0.0.1:1", groups=[os.getpid()])
    data = json.loads(reg.path.read_text())
    assert data["runner"]["pid"] == os.getpid()
    assert data["boot"] == boot_id()
    assert data["groups"][0]["cmd"]
    reg.unregister()
    assert not reg.path.exists()
