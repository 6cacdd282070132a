"""The public surface of ``faultline.stack`` and the external launcher (no processes)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import faultline.stack as stack
from faultline.stack import ExternalStack, Launcher, LocalStack, StackError, StackInfo
from faultline.system import load_profile
from payments.drill._local import local_topology


def test_all_is_exactly_the_public_names() -> None:
    public = {n for n in dir(stack) if not n.startswith("_")}
    modules = {n for n in public if type(getattr(stack, n)).__name__ == "module"}
    assert sorted(stack.__all__) == sorted(public - modules)


def test_launchers_have_the_launcher_shape() -> None:
    assert isinstance(LocalStack(local_topology()), Launcher)
    assert isinstance(ExternalStack(system="payments", environ={}), Launcher)
    assert LocalStack.controls == {"kill", "pause", "restart"}
    assert ExternalStack.controls == frozenset()


def test_stack_info_round_trips() -> None:
    info = StackInfo(system="payments", target="local", base_url="http://127.0.0.1:1",
                     proxy_url="http://127.0.0.1:2", endpoints={"database_url": "postgresql://x"})
    assert StackInfo.from_dict({**info.to_dict(), "unknown": 1}) == info


def test_external_stack_from_stack_json_and_environment(tmp_path: Path) -> None:
    data = {"merchants": [{"id": "m1", "api_key": "k", "accounts": ["a"]}]}
    path = tmp_path / "stack.json"
    path.write_text(json.dumps(data))
    ext = load_profile("payments").launcher("external", run_dir=tmp_path)
    assert isinstance(ext, ExternalStack)
    ext = ExternalStack(system="payments", hops={"api->postgres": "api_postgres"},
                        endpoint_env={"database_url": "FAULTLINE_DATABASE_URL"},
                        required=["database_url"], environ={
                            "FAULTLINE_BASE_URL": "http://127.0.0.1:8080",
                            "FAULTLINE_DATABASE_URL": "postgresql://u@127.0.0.1/p",
                            "FAULTLINE_STACK_JSON": str(path)})
    info = ext.start()
    assert info.workload_data == data
    assert info.target == "external"
    assert info.proxy_url is None
    assert info.hops == {}  # no proxy: no hop to fault
    assert info.endpoints == {"database_url": "postgresql://u@127.0.0.1/p"}
    with pytest.raises(StackError, match="no process control"):
        ext.kill("worker-1")
    ext.stop()  # nothing to heal, nothing stopped


def test_external_stack_names_what_is_missing() -> None:
    ext = ExternalStack(system="payments", endpoint_env={"database_url": "FAULTLINE_DATABASE_URL"},
                        required=["database_url"],
                        environ={"FAULTLINE_BASE_URL": "http://127.0.0.1:1"})
    with pytest.raises(StackError, match="FAULTLINE_DATABASE_URL"):
        ext.start()


def test_local_stack_refuses_control_before_start() -> None:
    with pytest.raises(StackError, match="not running"):
        LocalStack(local_topology()).kill("worker-1")


def test_bugs_reach_every_service_and_unknown_ones_fail_early(tmp_path: Path) -> None:
    profile = load_profile("payments")
    launcher = profile.launcher("local", run_dir=tmp_path,
                                bugs=["outbox_outside_tx", "relay_drops_on_error"])
    assert isinstance(launcher, LocalStack)
    from faultline.stack import Wiring

    wiring = Wiring(run_dir=tmp_path, bugs=launcher.bugs, topology=launcher.topology)
    env = launcher.topology.env(wiring)
    assert env["PAYMENTS_BUGS"] == "outbox_outside_tx,relay_drops_on_error"
    with pytest.raises(StackError, match="unknown bug"):
        profile.launcher("local", run_dir=tmp_path, bugs=["no_such_bug"])
