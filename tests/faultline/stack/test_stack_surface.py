"""The public surface of ``faultline.stack`` and the external launcher (no processes)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import faultline.stack as stack
from faultline.stack import ExternalStack, Launcher, LocalStack, StackError, StackInfo


def test_all_is_exactly_the_public_names() -> None:
    public = {n for n in dir(stack) if not n.startswith("_")}
    modules = {n for n in public if type(getattr(stack, n)).__name__ == "module"}
    assert sorted(stack.__all__) == sorted(public - modules)


def test_launchers_have_the_launcher_shape() -> None:
    assert isinstance(LocalStack(), Launcher)
    assert isinstance(ExternalStack(environ={}), Launcher)


def test_stack_info_round_trips_and_names_the_proxy_both_ways() -> None:
    info = StackInfo(api_url="http://127.0.0.1:1", database_url="postgresql://x",
                     redis_url="redis://x", proxy_url="http://127.0.0.1:2")
    assert info.toxiproxy_url == info.proxy_url
    assert StackInfo.from_dict({**info.to_dict(), "unknown": 1}) == info


def test_external_stack_from_stack_json_and_environment(tmp_path: Path) -> None:
    seed = {"merchants": [{"id": "m1", "api_key": "k", "accounts": ["a"]}]}
    path = tmp_path / "stack.json"
    path.write_text(json.dumps(seed))
    ext = ExternalStack(environ={
        "FAULTLINE_API_URL": "http://127.0.0.1:8080",
        "FAULTLINE_DATABASE_URL": "postgresql://u@127.0.0.1/p",
        "FAULTLINE_REDIS_URL": "redis://127.0.0.1:6379/0",
        "FAULTLINE_STACK_JSON": str(path),
    })
    info = ext.start()
    assert info.seed == seed
    assert info.target == "external"
    assert info.proxy_url is None
    assert info.hops == {}
    assert info.metrics_urls["api"] == "http://127.0.0.1:8080/metrics"
    with pytest.raises(StackError, match="no process control"):
        ext.kill("worker-1")
    ext.stop()  # nothing to heal, nothing stopped


def test_external_stack_names_what_is_missing() -> None:
    with pytest.raises(StackError, match="FAULTLINE_DATABASE_URL"):
        ExternalStack(environ={"FAULTLINE_API_URL": "http://127.0.0.1:1"}).start()


def test_local_stack_refuses_control_before_start() -> None:
    with pytest.raises(StackError, match="not running"):
        LocalStack().kill("worker-1")


def test_bugs_pass_through_to_every_service_and_unknown_ones_fail_early() -> None:
    pytest.importorskip("payments.bugs")
    env = LocalStack(bugs=["outbox_outside_tx", "relay_drops_on_error"],
                     env={"PAYMENTS_WORKER_CLAIM_IDLE_MS": "1500"})._service_env()
    assert env["PAYMENTS_BUGS"] == "outbox_outside_tx,relay_drops_on_error"
    assert env["PAYMENTS_WORKER_CLAIM_IDLE_MS"] == "1500"
    with pytest.raises(StackError, match="unknown bug"):
        LocalStack(bugs=["no_such_bug"]).start()
