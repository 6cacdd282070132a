"""The drill engine's own parts without a stack: shapes, history merge, target guard,
fault timeline and nemeses (with fakes), CLI exit codes, the pytest plugin's collection."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from faultline.faults import FaultTimeline, NetworkNemesis, ProcessNemesis, plan
from faultline.history import HistoryLog, NemesisLog, merge_histories
from faultline.load import LoadError, LocustMaster, LocustRun, LocustWorker, check_target
from faultline.load.client._shapes import ShapeSpec, users_at
from faultline.scenario import load_scenario, parse_scenario
from faultline.system import load_profile

REPO = Path(__file__).resolve().parents[3]
LOCUSTFILE = load_profile("payments").workload.locustfile


def test_shapes() -> None:
    steady = ShapeSpec("steady", users=10, duration=30, spawn_rate=10)
    assert users_at(steady, 0) == 10
    assert users_at(steady, 29.9) == 10
    assert users_at(steady, 30) is None
    ramp = ShapeSpec("ramp", users=10, duration=20, spawn_rate=10)
    assert users_at(ramp, 0) == 1
    assert users_at(ramp, 5) == 5
    assert users_at(ramp, 15) == 10
    spike = ShapeSpec("spike", users=4, duration=30, spawn_rate=4, spike_at=10, spike_for=5)
    assert [users_at(spike, t) for t in (9, 10, 14.9, 15)] == [4, 12, 12, 4]
    assert spike.peak_users == 12
    default_spike = ShapeSpec.from_load({"profile": "spike", "users": 2, "duration": 30})
    assert default_spike.spike_window() == (10, 20)
    with pytest.raises(ValueError, match="profile"):
        ShapeSpec("burst", users=1, duration=1, spawn_rate=1)


def test_merge_histories_orders_by_time_and_reindexes(tmp_path: Path) -> None:
    a = tmp_path / "history-1.jsonl"
    b = tmp_path / "history-2.jsonl"
    a.write_text('{"index":0,"time":10,"type":"invoke","process":"a"}\n'
                 '{"index":1,"time":30,"type":"ok","process":"a"}\n{"torn')
    b.write_text('{"index":0,"time":20,"type":"invoke","process":"b"}\n')
    nemesis = [{"time": 25, "type": "info", "process": "nemesis", "f": "start"}]
    merged = merge_histories([a, b, nemesis])
    assert isinstance(merged, list)
    assert [(m["index"], m["time"]) for m in merged] == [(0, 10), (1, 20), (2, 25), (3, 30)]
    out = tmp_path / "history.jsonl"
    assert merge_histories([a, b, nemesis], out=out) == 4  # streamed to a file
    assert [json.loads(x)["time"] for x in out.read_text().splitlines()] == [10, 20, 25, 30]


@pytest.mark.parametrize("url", ["http://10.0.0.1:8080", "http://localhost:80",
                                 "http://example.com", "ftp://127.0.0.1:1"])
def test_only_loopback_targets(url: str, tmp_path: Path) -> None:
    with pytest.raises(LoadError, match=r"127\.0\.0\.1"):
        check_target(url)
    with pytest.raises(LoadError):
        LocustRun(host=url, locustfile=LOCUSTFILE, load={"users": 1, "duration": 1},
                  stack_file=tmp_path / "s.json", history_dir=tmp_path)
    assert check_target("http://127.0.0.1:8080/") == "http://127.0.0.1:8080"


def test_load_is_bounded(tmp_path: Path) -> None:
    with pytest.raises(LoadError, match="users"):
        LocustRun(host="http://127.0.0.1:1", locustfile=LOCUSTFILE,
                  load={"users": 5000, "duration": 1},
                  stack_file=tmp_path / "s.json", history_dir=tmp_path)
    run = LocustRun(host="http://127.0.0.1:1", locustfile=LOCUSTFILE,
                    load={"users": 3, "duration": 12}, workers=2,
                    stack_file=tmp_path / "s.json", history_dir=tmp_path)
    cmd = run.command()
    assert "--headless" in cmd
    assert "--processes" in cmd
    assert "--run-time" in cmd
    assert cmd[cmd.index("-f") + 1] == str(LOCUSTFILE)
    assert "locust" not in sys.modules  # the runner never imports Locust


def test_master_and_worker_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = LocustRun(host="http://127.0.0.1:1", locustfile=LOCUSTFILE,
                    load={"users": 3, "duration": 12},
                    stack_file=tmp_path / "s.json", history_dir=tmp_path,
                    master=LocustMaster(expect_workers=3, workers_timeout=20))
    cmd = run.command()
    flag = {name: cmd[cmd.index(name) + 1] for name in (
        "--expect-workers", "--master-bind-host", "--master-bind-port", "--expect-workers-max-wait")}
    assert flag == {"--expect-workers": "3", "--master-bind-host": "127.0.0.1",
                    "--master-bind-port": "5557", "--expect-workers-max-wait": "20"}
    assert "--master" in cmd
    assert "--processes" not in cmd
    assert run.startup_allowance == 30  # waiting for workers, then for their last lines
    with pytest.raises(LoadError, match="--expect-workers"):
        LocustRun(host="http://127.0.0.1:1", locustfile=LOCUSTFILE,
                  load={"users": 1, "duration": 1}, workers=2,
                  stack_file=tmp_path / "s.json", history_dir=tmp_path, master=LocustMaster())
    for bad in ({"bind_port": 0}, {"expect_workers": 0}, {"workers_timeout": 0},
                {"bind_host": ""}):
        with pytest.raises(LoadError):
            LocustMaster(**bad)  # type: ignore[arg-type]
    assert LocustMaster().loopback
    assert not LocustMaster(bind_host="0.0.0.0").loopback
    monkeypatch.setenv("FAULTLINE_HISTORY_DIR", str(tmp_path))
    worker = LocustWorker(master_host="10.1.2.3", locustfile=LOCUSTFILE, master_port=6000)
    wcmd = worker.command()
    assert wcmd[wcmd.index("--master-host") + 1] == "10.1.2.3"
    assert {"--worker", "--headless"} <= set(wcmd)
    env = worker.environment(tmp_path / "ready")
    assert "FAULTLINE_HISTORY_DIR" not in env  # what makes it ship its history to the master
    assert env["FAULTLINE_WORKER_READY"] == str(tmp_path / "ready")
    with pytest.raises(LoadError, match="port"):
        LocustWorker(master_host="h", locustfile=LOCUSTFILE, master_port=0)


HOPS = {"api->postgres": "api_postgres", "api->redis": "api_redis"}
SCENARIO = """
name: t
load: {duration: 30s}
faults:
  - {at: 2s, for: 3s, hop: api->postgres, toxic: latency, latency: 100}
  - {at: 4s, kill: worker-1, restart_after: 1s}
  - {at: 5s, for: 1s, pause: relay}
  - {at: 6s, restart: api}
  - {at: 7s, hop: api->redis, toxic: down}
"""


def _scenario() -> Any:
    return parse_scenario(SCENARIO, "t.yaml")


def test_plan_orders_starts_and_stops() -> None:
    steps = [(s.at, s.action, s.index) for s in plan(_scenario().faults)]
    assert steps == [(2, "start", 0), (4, "start", 1), (5, "stop", 0), (5, "stop", 1),
                     (5, "start", 2), (6, "stop", 2), (6, "start", 3), (7, "start", 4)]


class FakeProxy:
    def __init__(self) -> None:
        self.state: dict[str, dict[str, Any]] = {
            "api_postgres": {"enabled": True, "toxics": []},
            "api_redis": {"enabled": True, "toxics": []},
        }

    def add_toxic(self, proxy: str, **kw: Any) -> dict[str, Any]:
        self.state[proxy]["toxics"].append(kw)
        return kw

    def remove_toxic(self, proxy: str, name: str, *, effect: bool = False) -> dict[str, Any] | None:
        self.state[proxy]["toxics"] = [t for t in self.state[proxy]["toxics"] if t["name"] != name]
        return {"seen": {"connections": 2}, "effect": {"bytes_delayed": 10}} if effect else None

    def proxy_effect(self, proxy: str) -> dict[str, Any]:
        return {"effect": {"connections_cut": 3}}

    def update_proxy(self, proxy: str, enabled: bool) -> dict[str, Any]:
        self.state[proxy]["enabled"] = enabled
        return self.state[proxy]

    def proxies(self) -> dict[str, dict[str, Any]]:
        return self.state


class FakeServices:
    controls = frozenset({"kill", "pause", "restart"})

    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []

    def kill(self, service: str, sig: int = signal.SIGKILL) -> int:
        self.calls.append(("kill", service, signal.Signals(sig).name))
        return 1

    def pause(self, service: str) -> int:
        self.calls.append(("pause", service))
        return 2

    def resume(self, service: str) -> int:
        self.calls.append(("resume", service))
        return 2

    def start_service(self, service: str) -> None:
        self.calls.append(("start", service))

    def restart(self, service: str) -> None:
        self.calls.append(("restart", service))


def test_timeline_runs_every_fault_and_heal_all_undoes_the_rest(tmp_path: Path) -> None:
    now = [0.0]
    log = NemesisLog(tmp_path / "nemesis.jsonl", clock=lambda: int(now[0] * 1e9))
    proxy, services = FakeProxy(), FakeServices()
    timeline = FaultTimeline(_scenario().faults, nemeses={
        "toxic": NetworkNemesis(proxy, HOPS, log), "process": ProcessNemesis(services, log)},
        log=log, clock=lambda: now[0])

    class Clockwork:  # the thread waits on Event.wait: drive time from the waits
        def wait(self, delay: float) -> bool:
            now[0] += delay
            return False

        def is_set(self) -> bool:
            return False

        def set(self) -> None:
            pass

    timeline._stop = Clockwork()  # type: ignore[assignment]
    timeline._run(0.0)
    assert services.calls == [("kill", "worker-1", "SIGKILL"), ("start", "worker-1"),
                              ("pause", "relay"), ("resume", "relay"), ("restart", "api")]
    assert proxy.state["api_redis"]["enabled"] is False  # down until the load ends
    assert timeline.active == ["down@api->redis"]
    timeline._stop = __import__("threading").Event()
    timeline.heal_all()
    assert proxy.state["api_redis"]["enabled"] is True
    assert all(not p["toxics"] for p in proxy.state.values())
    starts = [(line["value"]["index"], line["f"]) for line in log.lines]
    assert sorted(starts) == sorted([(i, f) for i in range(5) for f in ("start", "stop")])
    effects = {line["value"]["index"]: line["value"].get("effect") for line in log.lines
               if line["f"] == "stop"}
    assert effects[0] == {"bytes_delayed": 10}  # the proxy's counters of the toxic
    assert effects[1]["processes_signalled"] == 1
    assert effects[2]["processes_paused"] == 2
    assert effects[3]["restarts"] == 1
    assert effects[4] == {"connections_cut": 3}  # what disabling the hop cut
    assert all(line["process"] == "nemesis" and line["type"] == "info" for line in log.lines)
    assert len((tmp_path / "nemesis.jsonl").read_text().splitlines()) == 10


def test_a_fault_that_cannot_be_injected_is_recorded(tmp_path: Path) -> None:
    class Broken(FakeProxy):
        def add_toxic(self, proxy: str, **kw: Any) -> dict[str, Any]:
            raise OSError("proxy gone")

    log = NemesisLog()
    scn = parse_scenario("name: t\nload: {duration: 5s}\nfaults:\n"
                         "  - {at: 0s, for: 1s, hop: api->postgres, toxic: latency, latency: 1}\n",
                         "t.yaml")
    timeline = FaultTimeline(scn.faults, nemeses={"toxic": NetworkNemesis(Broken(), HOPS, log)},
                             log=log)
    timeline._run(timeline.clock())
    assert timeline.errors
    assert "proxy gone" in timeline.errors[0]
    assert log.lines[0]["f"] == "error"


def _cli(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "faultline", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def test_cli_validate_list_and_errors(tmp_path: Path) -> None:
    ok = _cli("validate", "scenarios")
    assert ok.returncode == 0, ok.stderr
    listed = _cli("list")
    assert listed.returncode == 0
    assert "lost-ack" in listed.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nload: {users: 0, duration: 10s}\n")
    for cmd in (("validate", str(bad)), ("run", str(bad), "--runs-dir", str(tmp_path))):
        res = _cli(*cmd)
        assert res.returncode == 4
        assert "Traceback" not in res.stderr
        assert "bad.yaml" in res.stderr
        assert "users" in res.stderr
    missing = _cli("run", str(tmp_path / "nope.yaml"))
    assert missing.returncode == 4
    assert "no such scenario" in missing.stderr
    unknown_bug = _cli("run", "scenarios/lost-ack.yaml", "--bugs", "no_such_bug")
    assert unknown_bug.returncode == 4
    assert "unknown bug" in unknown_bug.stderr
    not_a_run = _cli("check", str(tmp_path))
    assert not_a_run.returncode == 4
    assert "not a run directory" in not_a_run.stderr


def test_catalogue() -> None:
    files = sorted((REPO / "scenarios").glob("*.yaml"))
    assert len(files) >= 10
    for path in files:
        scn = load_scenario(path)
        assert len(scn.description) > 100, f"{path.name}: describe the real incident"
    default = sorted((REPO / "scenarios" / "default").glob("*.yaml"))
    total = sum(load_scenario(p).load.duration for p in default)
    assert default
    assert total <= 90


def test_pytest_plugin_collects_only_scenarios(tmp_path: Path) -> None:
    (tmp_path / "scenarios").mkdir()
    (tmp_path / "config").mkdir()
    (tmp_path / "scenarios" / "one.yaml").write_text("name: one\nload: {duration: 5s}\n")
    (tmp_path / "scenarios" / "alerts.yaml").write_text("rules: []\n")
    (tmp_path / "config" / "other.yaml").write_text("name: other\n")
    (tmp_path / "test_plain.py").write_text("def test_x():\n    assert True\n")
    res = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q",
                          "-p", "no:cacheprovider", "--rootdir", str(tmp_path), str(tmp_path)],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    out = res.stdout
    assert "scenarios/one.yaml::one" in out, out
    assert "test_plain.py::test_x" in out, out
    assert "other" not in out
    assert "alerts" not in out


def test_stored_run_is_rechecked(tmp_path: Path) -> None:
    """``faultline check RUN_DIR`` recomputes the verdict from the stored files only."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "scenario.yaml").write_text("name: stored\nload: {duration: 5s}\n"
                                       "invariants: [conservation]\n")
    (run / "history.jsonl").write_text(json.dumps(
        {"index": 0, "type": "invoke", "process": "p", "f": "balance", "time": 1}) + "\n")
    state = {"accounts": [{"id": "a", "merchant_id": "m", "currency": "EUR", "balance": 5,
                           "non_negative": True, "kind": "customer"}],
             "entries": [{"id": 1, "transfer_id": "t", "account_id": "a", "amount": 5,
                          "currency": "EUR"}],
             "transfers": [], "external_inflow": {"EUR": 0}}
    (run / "final_state.json").write_text(json.dumps(state))
    res = _cli("check", str(run))
    assert res.returncode == 1, res.stdout + res.stderr
    assert "conservation" in res.stdout
    rep = _cli("report", str(run))
    assert rep.returncode == 0
    assert (run / "report.html").exists()
    assert (run / "junit.xml").exists()


def test_pool_starts_once_per_system_target_and_bugs(tmp_path: Path) -> None:
    from faultline.drill import StackPool
    from faultline.stack import StackInfo

    started: list[tuple[str, tuple[str, ...]]] = []
    stopped: list[int] = []

    class Launcher:
        controls = frozenset()

        def __init__(self, target: str, bugs: list[str]) -> None:
            started.append((target, tuple(bugs)))
            self.n = len(started)

        def start(self) -> StackInfo:
            return StackInfo(system="s", target="local", base_url="http://127.0.0.1:1")

        info = start

        def stop(self) -> None:
            stopped.append(self.n)

    class Profile:
        name = "s"

        def launcher(self, target: str, *, run_dir: Path, bugs: list[str]) -> Launcher:
            return Launcher(target, bugs)

    pool = StackPool(reuse=True)
    pool.acquire(Profile(), "local", [], tmp_path, print)
    pool.release(healthy=True, log=print)  # kept for the next drill
    _, _, fresh = pool.acquire(Profile(), "local", [], tmp_path, print)
    assert not fresh
    assert started == [("local", ())]
    assert stopped == []
    pool.acquire(Profile(), "local", ["audit_chain_skip"], tmp_path, print)
    assert stopped == [1]  # other bugs: another stack
    pool.release(healthy=False, log=print)  # a drill that ended unhealthy: not reused
    assert stopped == [1, 2]
    pool.close()
    pool.close()
    assert stopped == [1, 2]


def test_history_log_per_process(tmp_path: Path) -> None:
    import os

    log = HistoryLog(tmp_path)
    log.write({"type": "invoke", "process": "p"})
    pid = os.fork()
    if pid == 0:  # a forked Locust worker
        try:
            log.write({"type": "invoke", "process": "child"})
            log.close()
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    log.write({"type": "ok", "process": "p"})
    log.close()
    files = sorted(tmp_path.glob("history-*.jsonl"))
    assert len(files) == 2
    lines = {f.name: [json.loads(x) for x in f.read_text().splitlines()] for f in files}
    mine = lines[f"history-{os.getpid()}.jsonl"]
    assert [x["index"] for x in mine] == [0, 1]
    child = lines[f"history-{pid}.jsonl"]
    assert [(x["index"], x["process"]) for x in child] == [(0, "child")]
