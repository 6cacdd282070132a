"""Container faults against the containerised stack; the invariants must hold, and a
deliberate bug must be caught (issue 6)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from ._drill import History, run_drill, summary

HOPS = {"api_postgres", "api_redis", "api_risk", "relay_postgres", "relay_redis",
        "worker_postgres", "worker_redis"}


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as reply:
            return int(reply.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError:
        return 0


def _wait_status(url: str, want: Any, timeout: float = 20.0) -> int:
    deadline = time.monotonic() + timeout
    got = _status(url)
    while not want(got) and time.monotonic() < deadline:
        time.sleep(0.25)
        got = _status(url)
    return got


def _proxy(info: Any, name: str, enabled: bool) -> None:
    req = urllib.request.Request(
        f"{info.toxiproxy_url}/proxies/{name}", method="POST",
        data=json.dumps({"enabled": enabled}).encode(), headers={"Content-Type": "application/json"},
    )
    urllib.request.urlopen(req, timeout=5).close()


def test_every_app_hop_goes_through_the_proxy(compose_stack: Any) -> None:
    info = compose_stack.info
    with urllib.request.urlopen(f"{info.toxiproxy_url}/proxies", timeout=5) as reply:
        proxies = json.load(reply)
    assert set(proxies) >= HOPS, sorted(proxies)
    ready = f"{info.api_url}/readyz"
    assert _wait_status(ready, lambda s: s == 200) == 200
    _proxy(info, "api_postgres", False)  # cut api->postgres: the api must notice
    try:
        assert _wait_status(ready, lambda s: s != 200) != 200
    finally:
        _proxy(info, "api_postgres", True)
    assert _wait_status(ready, lambda s: s == 200, timeout=30) == 200


def _assert_held(results: list[Any], history: History) -> None:
    ok = sum(1 for x in history.lines if x["type"] == "ok" and x.get("process") != "nemesis")
    assert ok > 20, f"too little load got through to mean anything: {summary(results, history)}"
    assert all(r.valid is True for r in results), summary(results, history)


async def test_kill_worker_container(compose_stack: Any, nemesis: Any, run_root: Path) -> None:
    def action(history: History) -> None:
        nemesis.record = history.add
        nemesis.kill("worker-1", signal="SIGKILL")
        time.sleep(3.0)
        nemesis.start("worker-1")
        nemesis.wait_running("worker-1", timeout=60)

    results, history, _ = await run_drill("kill-worker", compose_stack.info, run_root, action)
    _assert_held(results, history)


async def test_pause_database_container(compose_stack: Any, nemesis: Any, run_root: Path) -> None:
    def action(history: History) -> None:
        nemesis.record = history.add
        nemesis.pause("postgres")
        time.sleep(4.0)
        nemesis.unpause("postgres")

    results, history, _ = await run_drill("pause-postgres", compose_stack.info, run_root, action)
    _assert_held(results, history)


async def test_restart_redis_container(compose_stack: Any, nemesis: Any, run_root: Path) -> None:
    def action(history: History) -> None:
        nemesis.record = history.add
        nemesis.restart("redis", timeout=2)
        nemesis.wait_running("redis", timeout=60)

    results, history, _ = await run_drill("restart-redis", compose_stack.info, run_root, action)
    _assert_held(results, history)


async def test_relay_bug_is_caught_when_redis_goes_away(
    compose_stack: Any, nemesis: Any, run_root: Path
) -> None:
    """PAYMENTS_BUGS=relay_drops_on_error: the relay marks events published although the
    XADD failed; stopping Redis under load must make the drill fail on delivery."""
    compose_stack.recreate("relay", {"PAYMENTS_BUGS": "relay_drops_on_error"})
    try:
        def action(history: History) -> None:
            nemesis.record = history.add
            nemesis.stop("redis", timeout=1)
            time.sleep(4.0)
            nemesis.start("redis")
            nemesis.wait_running("redis", timeout=60)

        results, history, _ = await run_drill(
            "bug-relay-drops-on-error", compose_stack.info, run_root, action, settle=15.0
        )
    finally:
        compose_stack.recreate("relay", {"PAYMENTS_BUGS": ""})
    delivery = next(r for r in results if r.name == "outbox_delivered")
    kinds = {e["type"] for e in delivery.errors}
    # The relay's signature: rows marked published whose event never reached the stream.
    assert delivery.valid is False, summary(results, history)
    assert "event_not_in_stream" in kinds, summary(results, history)
