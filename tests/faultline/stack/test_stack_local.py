"""The local launcher against the real thing: PostgreSQL primary + replica, Redis, the
fault proxy and every payment service as processes (one stack for the module)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from faultline.proxy.client import ProxyClient
from faultline.stack import LocalStack, StackError, StackInfo, sweep
from faultline.stack._state import StackState, group_alive
from faultline.system import load_profile
from payments.drill._local import local_topology

PROFILE = load_profile("payments")
HOPS = {h.name: h.proxy for h in PROFILE.hops}

pytestmark = [pytest.mark.stack, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("stack-state")
    old = os.environ.get("FAULTLINE_STATE_DIR")
    os.environ["FAULTLINE_STATE_DIR"] = str(path)
    yield path
    if old is None:
        os.environ.pop("FAULTLINE_STATE_DIR", None)
    else:
        os.environ["FAULTLINE_STATE_DIR"] = old


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, state_dir: Path) -> Iterator[LocalStack]:
    s = LocalStack(local_topology(), run_dir=tmp_path_factory.mktemp("run"))
    try:
        s.start()
        yield s
    finally:
        s.stop()


def status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError:
        return 0


def wait_status(url: str, want: int | None, timeout: float = 15.0) -> int:
    """Poll until ``url`` answers ``want`` (None: anything but 200)."""
    deadline = time.monotonic() + timeout
    got = status(url)
    while time.monotonic() < deadline:
        got = status(url)
        if got == want or (want is None and got != 200):
            return got
        time.sleep(0.2)
    return got


def test_info_describes_every_hop_and_service(stack: LocalStack) -> None:
    info = stack.info()
    assert isinstance(info, StackInfo)
    assert info.hops == HOPS
    assert set(ProxyClient(info.proxy_url).proxies()) == set(HOPS.values())
    assert set(info.pids) >= {"proxy", "postgres", "replica", "redis", "risk", "api", "relay",
                              "worker-1", "worker-2"}
    assert info.system == "payments"
    assert info.workload_data["merchants"]
    assert info.workload_data["admin_api_key"]
    stack_json = Path(info.run_dir or "") / "stack.json"
    assert json.loads(stack_json.read_text()) == info.workload_data
    assert stack_json.stat().st_mode & 0o777 == 0o600  # API keys: owner only
    assert StackState.load(stack.state.path).path.stat().st_mode & 0o777 == 0o600
    for name in ("api", "risk", "relay", "worker-1", "worker-2"):
        assert status(info.metrics_urls[name]) == 200, name
        assert (Path(info.run_dir or "") / "logs" / f"{name}.log").exists()
    # the state file lists every process group while the stack runs
    state = StackState.load(stack.state.path)
    assert set(state.groups) >= set(info.pids)


def test_the_api_reaches_postgres_only_through_its_proxy(stack: LocalStack) -> None:
    info = stack.info()
    proxy = ProxyClient(info.proxy_url)
    ready = info.base_url + "/readyz"
    assert wait_status(ready, 200) == 200
    proxy.update_proxy("api_postgres", enabled=False)
    try:
        assert wait_status(ready, None) != 200
    finally:
        proxy.update_proxy("api_postgres", enabled=True)
    assert wait_status(ready, 200, timeout=30) == 200


def test_the_api_reaches_redis_only_through_its_proxy(stack: LocalStack) -> None:
    info = stack.info()
    proxy = ProxyClient(info.proxy_url)
    ready = info.base_url + "/readyz"
    proxy.update_proxy("api_redis", enabled=False)
    try:
        assert wait_status(ready, None) != 200
    finally:
        proxy.update_proxy("api_redis", enabled=True)
    assert wait_status(ready, 200, timeout=30) == 200


def test_the_replica_streams_through_the_replication_proxy(stack: LocalStack) -> None:
    import asyncio

    import asyncpg  # type: ignore[import-untyped,unused-ignore]

    info = stack.info()

    async def senders() -> list[str]:
        conn = await asyncpg.connect(info.endpoints["database_url"].replace("/payments", "/postgres"))
        try:
            rows = await conn.fetch("SELECT client_port::text FROM pg_stat_replication")
            return [r[0] for r in rows]
        finally:
            await conn.close()

    async def in_recovery() -> bool:
        conn = await asyncpg.connect(info.endpoints["replica_url"])
        try:
            return bool(await conn.fetchval("SELECT pg_is_in_recovery()"))
        finally:
            await conn.close()

    assert asyncio.run(in_recovery())
    # the walsender's peer is the proxy, so at least one replication connection exists
    assert asyncio.run(senders())


def test_kill_and_start_a_worker(stack: LocalStack) -> None:
    before = stack.info().pids["worker-1"]
    stack.kill("worker-1", signal.SIGKILL)
    assert "worker-1" not in stack.info().pids
    assert not group_alive(before)
    stack.start_service("worker-1")
    after = stack.info().pids["worker-1"]
    assert after != before
    assert status(stack.info().metrics_urls["worker-1"].replace("/metrics", "/healthz")) == 200


def test_pause_resume_and_restart_a_worker(stack: LocalStack) -> None:
    health = stack.info().metrics_urls["worker-2"].replace("/metrics", "/healthz")
    pid = stack.info().pids["worker-2"]
    stack.pause("worker-2")
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        assert state == "T"
        assert status(health) == 0  # a stopped process answers nothing
    finally:
        stack.resume("worker-2")
    assert wait_status(health, 200) == 200
    port = health.split(":")[2].split("/")[0]
    stack.restart("worker-2")
    assert stack.info().pids["worker-2"] != pid
    assert port in stack.info().metrics_urls["worker-2"]  # same port after a restart
    assert status(health) == 200


def test_restart_redis_keeps_its_port(stack: LocalStack) -> None:
    info = stack.info()
    stack.restart("redis")
    assert stack.info().endpoints["redis_url"] == info.endpoints["redis_url"]
    assert wait_status(info.base_url + "/readyz", 200, timeout=30) == 200


def test_unknown_service_is_a_clear_error(stack: LocalStack) -> None:
    with pytest.raises(StackError, match="unknown service 'mailer'"):
        stack.kill("mailer")


def test_stop_leaves_no_process_and_no_temp_dir(state_dir: Path, tmp_path: Path) -> None:
    s = LocalStack(local_topology(replica=False), run_dir=tmp_path / "run")
    s.start()
    groups = dict(s.state.groups)
    dirs = list(s.state.temp_dirs)
    proxy = ProxyClient(s.info().proxy_url)
    proxy.add_toxic("api_postgres", type="latency", attributes={"latency": 100})
    s.stop()
    s.stop()  # idempotent
    assert [name for name, g in groups.items() if group_alive(g)] == []
    assert [d for d in dirs if Path(d).exists()] == []
    assert not s.state.path.exists()
    with pytest.raises(StackError):
        s.info()


SIGKILLED_OWNER = textwrap.dedent("""
    import sys
    from faultline.stack import LocalStack
    from payments.drill._local import local_topology
    s = LocalStack(local_topology(replica=False), run_dir=sys.argv[1])
    s.start()
    print("READY", flush=True)
    import time
    time.sleep(600)
""")


def test_a_sigkilled_owner_leaves_nothing_after_sweep(state_dir: Path, tmp_path: Path) -> None:
    owner = subprocess.Popen([sys.executable, "-c", SIGKILLED_OWNER, str(tmp_path / "run")],
                             cwd=REPO, stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "FAULTLINE_STATE_DIR": str(state_dir)})
    try:
        assert owner.stdout is not None
        line = owner.stdout.readline()
        assert line.strip() == "READY", line
        states = [st for st in StackState.all() if st.owner_pid == owner.pid]
        assert len(states) == 1
        groups, dirs = states[0].groups, states[0].temp_dirs
        assert all(group_alive(g) for g in groups.values())
        owner.kill()
        owner.wait(timeout=10)
        # PR_SET_PDEATHSIG: the children die with their owner, before any sweep
        deadline = time.monotonic() + 10
        while any(group_alive(g) for g in groups.values()) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [n for n, g in groups.items() if group_alive(g)] == []
        assert all(Path(d).exists() for d in dirs)  # what only the sweep removes
        done = sweep()
        assert any(states[0].id in line for line in done)
        deadline = time.monotonic() + 10
        while any(group_alive(g) for g in groups.values()) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [n for n, g in groups.items() if group_alive(g)] == []
        assert [d for d in dirs if Path(d).exists()] == []
        assert not states[0].path.exists()
    finally:
        with contextlib.suppress(ProcessLookupError):
            owner.kill()
        sweep()


def test_kill_and_start_postgres_and_restart_the_replica(stack: LocalStack) -> None:
    info = stack.info()
    ready = info.base_url + "/readyz"
    stack.kill("postgres", signal.SIGKILL)
    assert "postgres" not in stack.info().pids
    assert wait_status(ready, None) != 200
    stack.start_service("postgres")
    assert stack.info().endpoints == info.endpoints  # same ports
    assert wait_status(ready, 200, timeout=30) == 200
    stack.restart("replica")
    assert "replica" in stack.info().pids


def test_the_services_log_in_as_a_least_privileged_role(stack: LocalStack) -> None:
    """Secrets and privileges: the services are not superusers, and their role needs its
    (SCRAM) password even on loopback."""
    import asyncio

    import asyncpg  # type: ignore[import-untyped,unused-ignore]

    info = stack.info()

    async def sessions() -> list[tuple[str, bool]]:
        conn = await asyncpg.connect(info.endpoints["database_url"])
        try:
            rows = await conn.fetch(
                "SELECT a.usename, r.rolsuper FROM pg_stat_activity a JOIN pg_roles r"
                " ON r.rolname = a.usename WHERE a.datname = 'payments'"
                " AND a.pid <> pg_backend_pid()")
            return [(r[0], r[1]) for r in rows]
        finally:
            await conn.close()

    found = asyncio.run(sessions())
    assert ("payments_app", False) in found
    assert all(user == "payments_app" for user, _ in found), found
    port = info.endpoints["database_url"].rsplit(":", 1)[1].split("/")[0]

    async def wrong_password() -> None:
        await asyncpg.connect(f"postgresql://payments_app:nope@127.0.0.1:{port}/payments")

    with pytest.raises(asyncpg.InvalidPasswordError):
        asyncio.run(wrong_password())


def test_ports_handed_out_before_their_servers_bind_them_never_repeat(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A port the kernel handed out and we closed is free again at once: the kernel gave
    a hop's proxy an app's port (the proxy refused the hop as a loop) in a fresh-clone
    run. Reserved ports are distinct, whatever the kernel hands out twice."""
    from faultline.stack import _local

    given = iter([41001, 41001, 41002, 41001, 41002, 41003])
    monkeypatch.setattr(_local, "free_port", lambda: next(given))
    stack = LocalStack(local_topology(), run_dir=tmp_path)
    assert [stack._port(), stack._port(), stack._port()] == [41001, 41002, 41003]
