"""Container control and the compose launcher against a fake Docker SDK client: what
each fault reaches, how it is healed, and the StackInfo a spec yields (runs in the main
suite, no engine needed; disconnect/connect is only exercised here, since the CI engine
has host networking only)."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest

from faultline.stack import Launcher, StackError
from faultline.stack._compose import ComposeError, ComposeSpec, ComposeStack, _last_json_object
from faultline.stack._containers import ContainerControl, ContainerFaultError

REPO = Path(__file__).resolve().parents[2]


class FakeBox:
    def __init__(self, name: str, processes: int = 2, network_mode: str = "bridge") -> None:
        self.name = name
        self.status = "running"
        self.paused = False
        self.calls: list[tuple[str, Any]] = []
        self.attrs: dict[str, Any] = {}
        self.network_mode = network_mode
        self.n_processes = processes
        self.freezer_broken = False
        self.ignores_term = False
        self.reload()

    def reload(self) -> None:
        self.attrs = {
            "State": {"Status": "paused" if self.paused else self.status,
                      "Paused": self.paused, "Pid": 4242 if self.status == "running" else 0},
            "HostConfig": {"NetworkMode": self.network_mode},
            "NetworkSettings": {"Networks": {"proj_default": {}}},
        }

    def top(self) -> dict[str, Any]:
        return {"Titles": ["PID"], "Processes": [[str(i)] for i in range(self.n_processes)]}

    def kill(self, signal: str) -> None:
        if self.paused:
            raise RuntimeError("Container is paused, unpause the container before stopping")
        self.calls.append(("kill", signal))
        if signal == "SIGKILL" or (signal in ("SIGTERM", "SIGQUIT", "SIGINT")
                                   and not self.ignores_term):
            self.status = "exited"

    def start(self) -> None:
        self.calls.append(("start", None))
        self.status = "running"

    def stop(self, timeout: int) -> None:
        self.calls.append(("stop", timeout))
        self.status = "exited"

    def pause(self) -> None:
        if self.freezer_broken:
            raise RuntimeError("OCI runtime pause failed: unable to freeze")
        self.paused = True

    def unpause(self) -> None:
        self.paused = False

    def exec_run(self, cmd: list[str], user: str) -> tuple[int, bytes]:
        self.calls.append(("exec", cmd[-1]))
        return 0, b""

    def restart(self, timeout: int) -> None:
        self.calls.append(("restart", timeout))
        self.status = "running"


class FakeNetwork:
    def __init__(self) -> None:
        self.members: set[str] = {"redis", "toxiproxy"}

    def disconnect(self, box: FakeBox) -> None:
        self.members.discard(box.name)

    def connect(self, box: FakeBox, aliases: list[str]) -> None:
        self.members.add(box.name)


class FakeImages:
    def __init__(self, present: set[str]) -> None:
        self.present = present

    def get(self, name: str) -> str:
        if name not in self.present:
            raise LookupError(name)
        return name


class FakeClient:
    def __init__(self) -> None:
        self.boxes = {n: FakeBox(n, processes=p) for n, p in
                      (("redis", 2), ("worker-1", 2), ("postgres", 7), ("toxiproxy", 2))}
        self.net = FakeNetwork()
        self.containers = self
        self.networks = self
        self.images = FakeImages(set())

    def list(self, all: bool, filters: dict[str, Any]) -> list[FakeBox]:
        service = next(f.split("=", 1)[1] for f in filters["label"] if ".service=" in f)
        return [self.boxes[service]] if service in self.boxes else []

    def get(self, name: str) -> FakeNetwork:
        return self.net


@pytest.fixture(autouse=True)
def _no_compose_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """``make test-compose`` exports the CI stack's settings; these tests set their own."""
    import os

    for name in list(os.environ):
        if name.startswith("FAULTLINE_"):
            monkeypatch.delenv(name)


@pytest.fixture
def fake() -> tuple[ContainerControl, FakeClient, list[str]]:
    client = FakeClient()
    said: list[str] = []
    control = ContainerControl("p", client, aliases={"proxy": "toxiproxy"}, ready_timeout=1.0,
                               log=said.append, sleep=lambda s: None)
    return control, client, said


def test_every_fault_counts_what_it_reached_and_heal_undoes_it(fake: Any) -> None:
    control, client, _ = fake
    assert control.kill("worker-1", signal.SIGTERM) == 2
    assert control.pause("postgres") == 7
    assert control.stop("proxy", timeout=1) == 2  # an alias for the toxiproxy service
    assert control.disconnect("redis") == ["proj_default"]
    assert client.boxes["worker-1"].calls == [("kill", "SIGTERM")]
    assert client.boxes["postgres"].paused
    assert "redis" not in client.net.members
    assert control.heal() == []
    assert {b.status for b in client.boxes.values()} == {"running"}
    assert not client.boxes["postgres"].paused
    assert "redis" in client.net.members
    assert control.heal() == []  # twice is fine


def test_a_kill_reaches_nothing_in_a_stopped_container_and_ends_a_stubborn_one(fake: Any) -> None:
    control, client, _ = fake
    box = client.boxes["worker-1"]
    box.status = "exited"
    box.reload()
    assert control.kill("worker-1") == 0
    assert box.calls == []
    box.status, box.ignores_term = "running", True
    assert control.kill("worker-1", signal.SIGTERM, exit_wait=0.0) == 2
    assert box.calls == [("kill", "SIGTERM"), ("kill", "SIGKILL")]  # escalated
    assert box.status == "exited"
    control.start("worker-1")
    assert box.status == "running"


def test_a_paused_container_is_thawed_before_it_is_killed(fake: Any) -> None:
    control, client, _ = fake
    control.pause("redis")
    assert control.kill("redis", signal.SIGKILL) == 2
    assert client.boxes["redis"].status == "exited"
    assert not client.boxes["redis"].paused
    assert control.resume("redis") == 0  # nothing is paused any more


def test_host_network_cannot_be_disconnected_and_unknown_service_is_a_stack_error(fake: Any) -> None:
    control, client, _ = fake
    client.boxes["redis"].network_mode = "host"
    client.boxes["redis"].reload()
    with pytest.raises(ContainerFaultError, match="host networking"):
        control.disconnect("redis")
    with pytest.raises(StackError, match="no container"):
        control.pause("replica")
    client.boxes["redis"].status = "exited"
    client.boxes["redis"].reload()
    with pytest.raises(StackError, match="not running"):
        control.pause("redis")


def test_pause_falls_back_to_sigstop_when_the_freezer_fails(fake: Any) -> None:
    control, client, said = fake
    box = client.boxes["postgres"]
    box.freezer_broken = True
    assert control.pause("postgres") == 7
    assert box.calls == [("exec", "kill -STOP -1"), ("kill", "SIGSTOP")]
    assert "SIGSTOP" in said[-1]
    assert control.resume("postgres") == 7
    assert box.calls[2:] == [("kill", "SIGCONT"), ("exec", "kill -CONT -1")]
    assert control.heal() == []


def test_restart_and_start_wait_until_running(fake: Any) -> None:
    control, client, _ = fake
    control.restart("redis")
    assert client.boxes["redis"].calls == [("restart", 5)]
    client.boxes["redis"].status = "exited"
    client.boxes["redis"].start = lambda: None  # type: ignore[method-assign]  # never comes up
    with pytest.raises(ContainerFaultError, match="not healthy after"):
        control.start("redis")


# ---------------------------------------------------------------------- the launcher
def _spec(**overrides: Any) -> ComposeSpec:
    fields: dict[str, Any] = {
        "system": "shop", "files": (Path("/nonexistent/compose.yaml"),),
        "ports": {"web": 8000, "db": 5432, "proxy": 8474, "worker": 9000},
        "entry": "web", "proxy": "proxy", "metrics": {"web": "web", "worker-1": "worker"},
        "endpoints": lambda p: {"database_url": f"postgresql://127.0.0.1:{p['db']}/shop"},
        "hops": {"web->db": "web_db"}, "services": ("db", "worker-1"),
        "env": {"SHOP_BUGS": "x"}}
    fields.update(overrides)
    return ComposeSpec(**fields)


def test_a_spec_yields_the_one_stack_info(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAULTLINE_WEB_PORT", "18000")
    stack = ComposeStack(_spec(), run_dir=tmp_path, client=FakeClient(), project="p",
                         env={"FAULTLINE_DB_PORT": "15432"})
    assert isinstance(stack, Launcher)
    assert stack.ports == {"web": 18000, "db": 15432, "proxy": 8474, "worker": 9000}
    info = stack._describe({"accounts": [1]})
    assert info.system == "shop"
    assert info.target == "compose"
    assert info.base_url == "http://127.0.0.1:18000"
    assert info.proxy_url == "http://127.0.0.1:8474"
    assert info.hops == {"web->db": "web_db"}
    assert info.services == ["db", "worker-1"]
    assert info.metrics_urls == {"web": "http://127.0.0.1:18000/metrics",
                                 "worker-1": "http://127.0.0.1:9000/metrics"}
    assert info.endpoints == {"database_url": "postgresql://127.0.0.1:15432/shop"}
    assert info.workload_data == {"accounts": [1]}
    assert stack._environ()["SHOP_BUGS"] == "x"
    with pytest.raises(StackError, match="not running"):
        stack.kill("db")  # before start()


def test_control_needs_a_started_stack_and_a_known_service(tmp_path: Path) -> None:
    client = FakeClient()
    stack = ComposeStack(_spec(services=("postgres", "worker-1")), run_dir=tmp_path,
                         client=client, project="p")
    stack._info = stack._describe({})
    with pytest.raises(StackError, match="unknown service 'redis'"):
        stack.pause("redis")
    assert stack.pause("postgres") == 7
    assert stack.resume("postgres") == 7
    assert stack.kill("worker-1", signal.SIGKILL) == 2
    stack.control.ready_timeout = 1.0
    stack.start_service("worker-1")
    assert stack.info().pids == {"postgres": 4242, "worker-1": 4242}


def test_spec_mistakes_are_caught_early(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="no port setting called nope"):
        _spec(entry="nope")
    with pytest.raises(ComposeError, match="no compose files for host networking"):
        ComposeStack(_spec(), run_dir=tmp_path, host_network=True)
    monkeypatch.setenv("FAULTLINE_WEB_PORT", "eighty")
    with pytest.raises(ComposeError, match="not a port number"):
        _ = ComposeStack(_spec(), run_dir=tmp_path).ports
    stack = ComposeStack(_spec(), run_dir=tmp_path, project="p")
    with pytest.raises(ComposeError, match="not found"):
        stack.start()
    stack.stop()  # nothing was started: nothing to do, twice
    stack.stop()


def test_an_image_is_built_only_when_missing_and_buildable(tmp_path: Path) -> None:
    client = FakeClient()
    (tmp_path / "ctx").mkdir()
    stack = ComposeStack(_spec(), run_dir=tmp_path, client=client, project="p")
    stack._services = {"app": {"image": "shop:1", "build": {"context": str(tmp_path / "ctx"),
                                                            "dockerfile": "Dockerfile"}},
                       "db": {"image": "postgres:16"}}
    with pytest.raises(ComposeError, match="cannot be built here"):
        stack._needs_build()
    (tmp_path / "ctx" / "Dockerfile").write_text("FROM scratch\n")
    assert stack._needs_build() is True
    client.images.present.add("shop:1")
    assert stack._needs_build() is False


def test_the_workload_data_is_the_last_json_object_printed() -> None:
    assert _last_json_object('Creating x ... done\n{"a": {"b": 1}}\n') == {"a": {"b": 1}}
    assert _last_json_object('{"a": 1}\nlog line\n{"b": [2]}') == {"b": [2]}
    assert _last_json_object("no json here\n") is None


def test_the_engine_imports_no_system() -> None:
    for module in ("_compose.py", "_compose_spec.py", "_containers.py"):
        text = (REPO / "faultline" / "stack" / module).read_text().lower()
        assert "payments" not in text, module
