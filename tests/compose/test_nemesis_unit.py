"""ContainerNemesis against a fake Docker SDK client: the bookkeeping of faults and heals
(runs in the main suite, no engine needed; disconnect/connect is only exercised here, since the CI
engine has host networking only)."""

from __future__ import annotations

from typing import Any

import pytest

from faultline.faults._container import ContainerFaultError, ContainerNemesis


class FakeBox:
    def __init__(self, name: str, network_mode: str = "bridge") -> None:
        self.name = name
        self.status = "running"
        self.calls: list[tuple[str, Any]] = []
        self.attrs: dict[str, Any] = {}
        self.network_mode = network_mode
        self.reload()

    def reload(self) -> None:
        self.attrs = {
            "State": {"Status": self.status, "Paused": self.status == "paused"},
            "HostConfig": {"NetworkMode": self.network_mode},
            "NetworkSettings": {"Networks": {"proj_default": {}}},
        }

    def kill(self, signal: str) -> None:
        self.calls.append(("kill", signal))
        self.status = "exited"

    def start(self) -> None:
        self.calls.append(("start", None))
        self.status = "running"

    def stop(self, timeout: int) -> None:
        self.calls.append(("stop", timeout))
        self.status = "exited"

    def pause(self) -> None:
        if getattr(self, "freezer_broken", False):
            raise RuntimeError("OCI runtime pause failed: unable to freeze")
        self.status = "paused"

    def exec_run(self, cmd: list[str], user: str) -> tuple[int, bytes]:
        self.calls.append(("exec", cmd[-1]))
        return 0, b""

    def unpause(self) -> None:
        self.status = "running"

    def restart(self, timeout: int) -> None:
        self.calls.append(("restart", timeout))


class FakeNetwork:
    def __init__(self) -> None:
        self.members: set[str] = {"redis", "toxiproxy"}

    def disconnect(self, box: FakeBox) -> None:
        self.members.discard(box.name)

    def connect(self, box: FakeBox, aliases: list[str]) -> None:
        self.members.add(box.name)


class FakeClient:
    def __init__(self) -> None:
        self.boxes = {n: FakeBox(n) for n in ("redis", "worker-1", "postgres", "toxiproxy")}
        self.net = FakeNetwork()
        self.containers = self
        self.networks = self

    def list(self, all: bool, filters: dict[str, Any]) -> list[FakeBox]:
        service = next(f.split("=", 1)[1] for f in filters["label"] if ".service=" in f)
        return [self.boxes[service]] if service in self.boxes else []

    def get(self, name: str) -> FakeNetwork:
        return self.net


@pytest.fixture
def fake() -> tuple[ContainerNemesis, FakeClient, list[dict[str, Any]]]:
    client = FakeClient()
    lines: list[dict[str, Any]] = []
    ticks = iter(range(1, 10_000))
    nem = ContainerNemesis(project="p", client=client, record=lines.append, clock=lambda: next(ticks))
    return nem, client, lines


def test_every_fault_is_healed_and_recorded(fake: Any) -> None:
    nem, client, lines = fake
    nem.kill("worker-1", signal="TERM")
    nem.pause("postgres")
    nem.stop("proxy", timeout=1)  # the scenario name `proxy` is the toxiproxy service
    nem.disconnect("redis")
    assert client.boxes["worker-1"].calls == [("kill", "SIGTERM")]
    assert "redis" not in client.net.members
    assert nem.heal() == []
    assert {b.status for b in client.boxes.values()} == {"running"}
    assert "redis" in client.net.members
    starts = [(x["value"]["fault"], x["value"]["service"]) for x in lines if x["f"] == "start"]
    stops = [(x["value"]["fault"], x["value"]["service"]) for x in lines if x["f"] == "stop"]
    assert sorted(starts) == sorted(stops)
    assert all(x["process"] == "nemesis" and x["type"] == "info" for x in lines)
    assert [x["time"] for x in lines] == sorted(x["time"] for x in lines)
    assert nem.heal() == []  # twice is fine
    assert len(lines) == 8


def test_host_network_cannot_be_disconnected_and_unknown_service_is_an_error(fake: Any) -> None:
    nem, client, _ = fake
    client.boxes["redis"].network_mode = "host"
    client.boxes["redis"].reload()
    with pytest.raises(ContainerFaultError, match="host networking"):
        nem.disconnect("redis")
    with pytest.raises(ContainerFaultError, match="no container"):
        nem.pause("replica")


def test_container_control_is_a_service_control_for_the_process_nemesis() -> None:
    import signal

    from faultline.faults._container import ContainerControl

    client = FakeClient()
    control = ContainerControl("p", client, ready_timeout=1.0)
    control.kill("worker-1", signal.SIGQUIT)
    assert client.boxes["worker-1"].calls == [("kill", "SIGQUIT")]
    control.start("worker-1")
    control.pause("postgres")
    assert client.boxes["postgres"].status == "paused"
    control.resume("postgres")
    control.restart("redis")
    assert {b.status for b in client.boxes.values()} == {"running"}
    assert client.boxes["redis"].calls == [("restart", 5)]


def test_pause_falls_back_to_sigstop_when_the_freezer_fails(fake: Any, monkeypatch: Any) -> None:
    nem, client, lines = fake
    monkeypatch.setattr("faultline.faults._container.time.sleep", lambda s: None)
    box = client.boxes["postgres"]
    box.freezer_broken = True
    nem.pause("postgres")
    assert box.calls == [("exec", "kill -STOP -1"), ("kill", "SIGSTOP")]
    assert lines[-1]["value"]["method"] == "sigstop"
    assert nem.heal() == []
    assert box.calls[2:] == [("kill", "SIGCONT"), ("exec", "kill -CONT -1")]
    assert [x["f"] for x in lines] == ["start", "stop"]
