"""Statements are served by a real streaming replica, and by the primary when the replica
is down (through the replica circuit breaker)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from payments_stack import Stack, new_stack

from faultline.stack._embedded import EmbeddedPostgres, EmbeddedRedis, find_binary

pytestmark = pytest.mark.stack


class FastReplica(EmbeddedPostgres):
    """pg_basebackup with an immediate checkpoint: the default spread checkpoint makes
    the backup wait for a large share of checkpoint_timeout on an idle primary."""

    def _basebackup(self) -> None:
        primary = self.replica_of
        assert primary is not None
        self._run([find_binary("pg_basebackup"), "-h", "127.0.0.1", "-p", str(primary.port),
                   "-U", "postgres", "-D", str(self.data_dir), "-R", "-X", "stream",
                   "--no-sync", "--checkpoint=fast"])
        with open(self.data_dir / "postgresql.auto.conf", "a") as f:
            f.write(f"port = {self.port}\nhot_standby_feedback = on\n")


@pytest.fixture(scope="module")
def replica(postgres_server: EmbeddedPostgres) -> Iterator[EmbeddedPostgres]:
    server = FastReplica(replica_of=postgres_server).start()
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture(scope="module")
def stack(postgres_server: EmbeddedPostgres, module_redis: EmbeddedRedis,
          replica: EmbeddedPostgres) -> Iterator[Stack]:
    s = new_stack(postgres_server, module_redis.url, "replica")
    try:
        s.run_seed("--merchants", "1", "--accounts", "2", "--balance", "1000")
        db = s.database_url.rsplit("/", 1)[1]
        replica_url = replica.url.rsplit("/", 1)[0] + "/" + db
        s.start("api", PAYMENTS_REPLICA_URL=replica_url)
        yield s
    finally:
        s.stop_all()


def _statement(stack: Stack) -> dict[str, object]:
    m = stack.seed["merchants"][0]
    with stack.client(key=m["api_key"]) as c:
        r = c.get(f"/v1/accounts/{m['accounts'][0]}/statement")
    assert r.status_code == 200, r.text
    return dict(r.json())


def _metric(stack: Stack, name: str) -> float | None:
    with stack.client() as c:
        for line in c.get("/metrics").text.splitlines():
            if line.startswith(name):
                return float(line.split()[-1])
    return None


def test_statement_served_by_replica(stack: Stack) -> None:
    deadline = time.monotonic() + 10
    while (_statement(stack)["source"] != "replica" and time.monotonic() < deadline):
        time.sleep(0.2)
    st = _statement(stack)
    assert st["source"] == "replica"
    assert st["balance"] == 1000
    time.sleep(1.2)  # one lag probe
    lag = _metric(stack, "payments_replica_lag_seconds")
    assert lag is not None
    assert 0 <= lag < 5


def test_replica_down_falls_back_to_primary(stack: Stack, replica: EmbeddedPostgres) -> None:
    replica.stop()
    sources = [_statement(stack)["source"] for _ in range(6)]
    assert set(sources) == {"primary"}
    assert _metric(stack, 'payments_breaker_state{breaker="replica"}') == 2  # open
