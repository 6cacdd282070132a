"""A drill's signal reaches its service whatever the shell that started Faultline
ignored: a script's background job (``faultline run ... &``) ignores SIGINT and
SIGQUIT, and an ignored signal survives ``exec``. Before, every service inherited that,
and ``kill: api, signal: SIGQUIT`` did nothing for 15 s (the launcher's wait, then
SIGKILL): seen in an exploration started from a background job."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.stack, pytest.mark.slow]

SCENARIO = """\
name: sigquit-api
seed: 1
load: {profile: steady, users: 4, duration: 8s}
faults:
  - {at: 2s, kill: api, signal: SIGQUIT, restart_after: 1s}
settle: 10s
"""


def _as_a_background_job() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGQUIT, signal.SIG_IGN)


def test_sigquit_ends_the_service_even_when_faultline_inherited_it_ignored(
        tmp_path: Path) -> None:
    (tmp_path / "sigquit.yaml").write_text(SCENARIO)
    res = subprocess.run(
        [sys.executable, "-m", "faultline", "run", "sigquit.yaml", "--runs-dir", "runs"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
        preexec_fn=_as_a_background_job)
    assert res.returncode == 0, res.stdout + res.stderr[-2000:]
    [verdict_file] = (tmp_path / "runs").glob("*/verdict.json")
    [fault] = json.loads(verdict_file.read_text())["faults"]
    assert fault["effect"]["processes_signalled"] == 1
    # down for the 1 s restart_after and the api's start, not 15 s of SIGQUIT ignored
    assert fault["effect"]["downtime_ms"] < 5000, fault
