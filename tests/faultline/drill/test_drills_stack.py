"""Short drills against a real local stack: the correct stack holds, every deliberate bug
is caught by the right checker, and a SIGKILLed run is swept by the next one.

Slow by nature (each drill: stack start, steady-state probe, 12-16 s of load, settle):
about 30-40 s each. The stack is ``faultline.stack``'s local launcher, the one
``faultline run`` uses (``FAULTLINE_DRILL_STACK=standin`` selects the lighter stand-in of
``local_stack.py``). The SIGKILL test uses the stand-in on purpose: its processes do not
die with their runner (as with a compose or external stack, unlike the launcher's
PDEATHSIG children), so it shows the next run sweeping what a killed run left.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from faultline._drill_stack import StackError, open_stack
from faultline._runner import DrillOptions, DrillOutcome, run_drill
from faultline.stack._embedded import EmbeddedPostgres

from .local_stack import StandInStack

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


@pytest.fixture(scope="module")
def factory(request: pytest.FixtureRequest) -> Any:
    if os.environ.get("FAULTLINE_DRILL_STACK") == "standin":
        return StandInStack(request.getfixturevalue("postgres_server"))
    return open_stack


def _drill(name: str, factory: Any, tmp_path: Path, bugs: list[str] | None = None) -> DrillOutcome:
    return run_drill(DRILLS / f"{name}.yaml",
                     DrillOptions(runs_dir=tmp_path, bugs=bugs or [], progress=False),
                     stack_factory=factory)


def _failed(outcome: DrillOutcome) -> set[str]:
    return {r.name for r in outcome.verdict.results if r.valid is False}


def test_correct_stack_holds(factory: Any, tmp_path: Path) -> None:
    outcome = _drill("lost-ack", factory, tmp_path)
    assert outcome.exit_code == 0, outcome.summary
    run = outcome.run_dir
    assert run is not None
    for name in ("scenario.yaml", "seed", "history.jsonl", "final_state.json", "verdict.json",
                 "junit.xml", "report.html", "metrics.jsonl"):
        assert (run / name).exists(), name
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


@pytest.mark.parametrize("bug", sorted(BUG_MATRIX))
def test_each_bug_is_caught(bug: str, factory: Any, tmp_path: Path) -> None:
    drill, checker = BUG_MATRIX[bug]
    outcome = _drill(drill, factory, tmp_path, [bug])
    assert outcome.exit_code == 1, f"{bug} not caught by {drill}:\n{outcome.summary}"
    assert checker in _failed(outcome), outcome.summary


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


SIGKILLED = """
import sys, types
from pathlib import Path
sys.path.insert(0, {here!r})
from local_stack import StandInStack
from faultline._runner import DrillOptions, run_drill
factory = StandInStack(types.SimpleNamespace(url={pg!r}))
run_drill({scenario!r}, DrillOptions(runs_dir=Path({runs!r}), progress=False), stack_factory=factory)
"""


def test_sigkilled_run_is_swept_by_the_next(postgres_server: EmbeddedPostgres, tmp_path: Path) -> None:
    code = SIGKILLED.format(here=str(HERE), pg=postgres_server.url,
                            scenario=str(DRILLS / "long-fault.yaml"), runs=str(tmp_path))
    victim = subprocess.Popen([sys.executable, "-c", code], cwd=REPO,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    registry = tmp_path / ".active" / f"{victim.pid}.json"
    deadline = time.monotonic() + 120
    entry: dict[str, Any] = {}
    while time.monotonic() < deadline:
        nemesis = list(tmp_path.glob("*/nemesis.jsonl"))
        if nemesis and registry.exists():
            entry = json.loads(registry.read_text())
            if entry.get("process_groups") and entry.get("proxy_url") and nemesis[0].read_text():
                break
        time.sleep(0.2)
    else:
        victim.kill()
        pytest.fail("the victim drill never injected its fault")
    from faultline.proxy.client import ProxyAPIError, ProxyClient

    toxics = ProxyClient(entry["proxy_url"]).toxics("api_postgres")
    assert toxics, "the fault is in force before the kill"
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=10)
    left = [p for p in entry["pids"] + entry["process_groups"] if _alive(p)]
    assert left, "a SIGKILLed runner leaves its children behind (nothing to sweep otherwise)"

    def no_stack(target: str, run_dir: Path, bugs: list[str]) -> Any:
        raise StackError("no stack needed: this run only has to start")

    outcome = run_drill(DRILLS / "lost-ack.yaml", DrillOptions(runs_dir=tmp_path, progress=False),
                        stack_factory=no_stack)
    assert outcome.exit_code == 4
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and any(_alive(p) for p in left):
        time.sleep(0.2)
    assert not [p for p in left if _alive(p)], "processes of the killed run are left"
    assert not registry.exists()
    with pytest.raises(ProxyAPIError):  # the proxy (and with it every toxic) is gone
        ProxyClient(entry["proxy_url"], timeout=1.0).toxics("api_postgres")


def test_faultline_run_on_the_local_launcher(tmp_path: Path) -> None:
    """The real thing: ``faultline run`` on ``faultline.stack``'s own local launcher."""
    try:
        from faultline.stack._local import LocalStack  # noqa: F401
    except ImportError:
        pytest.skip("faultline.stack's local launcher is not there yet")
    junit = tmp_path / "drill.xml"
    res = subprocess.run(
        [sys.executable, "-m", "faultline", "run", str(DRILLS / "lost-ack.yaml"),
         "--runs-dir", str(tmp_path), "--junit", str(junit)],
        cwd=REPO, capture_output=True, text=True, timeout=400)
    assert res.returncode == 0, res.stdout + res.stderr[-3000:]
    assert "HELD" in res.stdout
    assert "replay: faultline run" in res.stdout
    assert "<testsuite" in junit.read_text()
    assert not list((tmp_path / ".active").glob("*.json"))
