"""The fates of a request on one hop, each through a toxic, over real TCP.

docs/proxy.md's table "fate of a request -> toxic, stream, scope, attributes" is what
the scenario catalogue uses; each row is exercised here against an upstream that
records what it processed, and the client's view is checked (EOF vs reset vs stall).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any

import pytest
from proxy_helpers import Upstream, connect, read_to_end, recv_exactly, turn

from faultline.proxy.client import ProxyClient

MakeUpstream = Callable[[Callable[[socket.socket, Upstream], None]], Upstream]


def commits_then_replies(conn: socket.socket, up: Upstream) -> None:
    """One 'payment' per line: recorded (committed), then acknowledged."""
    pending = b""
    while True:
        chunk = conn.recv(4096)
        if not chunk:
            up.received.append(b"<EOF>")
            return
        pending += chunk
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            up.received.append(line)
            conn.sendall(b"ACK " + line + b"\n")


def reads_to_eof_then_replies(conn: socket.socket, up: Upstream) -> None:
    """A server that reads the whole request (until the client's FIN), then answers."""
    data = b""
    while chunk := conn.recv(4096):
        data += chunk
    up.received.append(data)
    conn.sendall(b"GOT " + data)


def test_request_lost_before_the_server_sees_it(api: ProxyClient,
                                                make_upstream: MakeUpstream) -> None:
    up = make_upstream(commits_then_replies)
    proxy = api.create_proxy("fate_lost", upstream=up.address)
    api.add_toxic("fate_lost", type="lost_ack", stream="upstream")
    with connect(proxy) as sock:
        sock.sendall(b"PAY 1\n")
        assert read_to_end(sock) == (b"", True)
    time.sleep(0.05)
    assert b"PAY 1" not in up.received


def test_reply_after_the_client_gave_up(api: ProxyClient, make_upstream: MakeUpstream) -> None:
    up = make_upstream(commits_then_replies)
    proxy = api.create_proxy("fate_late", upstream=up.address)
    api.add_toxic("fate_late", type="latency", attributes={"latency": 400})
    with connect(proxy, timeout=0.15) as sock:
        sock.sendall(b"PAY 2\n")
        with pytest.raises(TimeoutError):  # the client's timeout fires first
            sock.recv(100)
        sock.settimeout(2)
        assert sock.recv(100) == b"ACK PAY 2\n"  # ...the reply still comes, too late
    assert up.received[0] == b"PAY 2"


def test_half_close_downstream_client_reads_eof_while_requests_still_flow(
    api: ProxyClient, make_upstream: MakeUpstream
) -> None:
    up = make_upstream(commits_then_replies)
    proxy = api.create_proxy("fate_hc", upstream=up.address)
    api.add_toxic("fate_hc", type="half_close", attributes={"after_bytes": 4})
    with connect(proxy, timeout=3) as sock:
        sock.sendall(b"PAY 3\n")
        data, reset = read_to_end(sock)
        assert (data, reset) == (b"ACK ", False)  # 4 bytes, then a FIN: not a reset
        sock.sendall(b"PAY 4\n")  # the other direction still flows to the server
        deadline = time.monotonic() + 3
        while b"PAY 4" not in up.received and time.monotonic() < deadline:
            time.sleep(0.01)
    assert up.received[:2] == [b"PAY 3", b"PAY 4"]
    report = api.remove_toxic("fate_hc", "half_close_downstream", effect=True)
    assert report is not None
    assert report["effect"]["connections_half_closed"] == 1
    assert report["effect"]["bytes_dropped"] >= len(b"PAY 3\n") - 4


def test_half_close_upstream_server_reads_eof_and_still_answers(
    api: ProxyClient, make_upstream: MakeUpstream
) -> None:
    up = make_upstream(reads_to_eof_then_replies)
    proxy = api.create_proxy("fate_hcu", upstream=up.address)
    api.add_toxic("fate_hcu", type="half_close", stream="upstream",
                  attributes={"after_bytes": 7})
    with connect(proxy, timeout=3) as sock:
        sock.sendall(b"REQUEST and more")
        assert read_to_end(sock) == (b"GOT REQUEST", False)  # the reply after the FIN
    assert up.received == [b"REQUEST"]


def test_stall_mid_reply_until_removed(api: ProxyClient, echo_upstream: Upstream) -> None:
    proxy = api.create_proxy("fate_stall", upstream=echo_upstream.address)
    api.add_toxic("fate_stall", type="stall", attributes={"after_bytes": 3})
    with connect(proxy, timeout=0.3) as sock:
        sock.sendall(b"0123456789")
        assert recv_exactly(sock, 3) == b"012"
        with pytest.raises(TimeoutError):  # the rest hangs, the connection stays open
            sock.recv(100)
        time.sleep(0.2)
        report = api.remove_toxic("fate_stall", "stall_downstream", effect=True)
        sock.settimeout(3)
        assert recv_exactly(sock, 7) == b"3456789"  # removing the toxic lets it flow
        assert turn(sock, b"again") == b"again"
    assert report is not None
    assert report["effect"]["stalls"] == 1
    assert report["effect"]["bytes_held"] == 7
    assert report["effect"]["stall_ms"] >= 400


def test_stall_with_timeout_resumes_by_itself(api: ProxyClient, echo_upstream: Upstream) -> None:
    proxy = api.create_proxy("fate_stall_t", upstream=echo_upstream.address)
    api.add_toxic("fate_stall_t", type="stall", attributes={"after_bytes": 0, "timeout": 300})
    with connect(proxy, timeout=3) as sock:
        start = time.monotonic()
        assert turn(sock, b"late") == b"late"
        waited = time.monotonic() - start
        assert turn(sock, b"then on time") == b"then on time"  # one stall per connection
    assert 0.28 <= waited <= 2.0


def test_stall_per_exchange(api: ProxyClient, echo_upstream: Upstream) -> None:
    from proxy_helpers import pattern_seed

    proxy = api.create_proxy("fate_stall_x", upstream=echo_upstream.address)
    api.set_seed(pattern_seed("fate_stall_x", "st", "exchange", [False, True, False]))
    api.add_toxic("fate_stall_x", name="st", type="stall", toxicity=0.5, scope="exchange",
                  attributes={"after_bytes": 2, "timeout": 500})
    with connect(proxy, timeout=3) as sock:
        times = []
        for payload in (b"first", b"second", b"third"):
            start = time.monotonic()
            assert turn(sock, payload) == payload
            times.append(time.monotonic() - start)
    assert times[1] >= 0.47
    assert times[0] < 0.4
    assert times[2] < 0.4
    effect = api.toxic_effect("fate_stall_x", "st")["effect"]
    assert effect["stalls"] == 1
    assert effect["bytes_held"] == len(b"second") - 2


async def test_cut_between_the_statements_of_a_transaction_with_real_postgres(
    api: ProxyClient, postgres_server: Any
) -> None:
    """A pooled PostgreSQL connection is reset before its third statement reaches the
    server: the transaction's first UPDATE must be rolled back, not half-applied."""
    import asyncpg
    from proxy_helpers import pattern_seed

    proxy = api.create_proxy("fate_pg", upstream=f"127.0.0.1:{postgres_server.port}")
    port = int(proxy["listen"].rsplit(":", 1)[1])
    direct = await asyncpg.connect(postgres_server.url)
    pooled = await asyncpg.connect(postgres_server.url_via(port))  # opened before the fault
    try:
        await direct.execute("DROP TABLE IF EXISTS fate_acct; "
                             "CREATE TABLE fate_acct (id int primary key, balance int); "
                             "INSERT INTO fate_acct VALUES (1, 100), (2, 0)")
        api.set_seed(pattern_seed("fate_pg", "cut", "exchange", [False, False, True]))
        api.add_toxic("fate_pg", name="cut", type="reset_peer", stream="upstream",
                      toxicity=0.5, scope="exchange")
        await pooled.execute("BEGIN")
        await pooled.execute("UPDATE fate_acct SET balance = balance - 30 WHERE id = 1")
        with pytest.raises((ConnectionError, asyncpg.exceptions.ConnectionDoesNotExistError,
                            asyncpg.exceptions.InterfaceError, OSError)):
            await pooled.execute("UPDATE fate_acct SET balance = balance + 30 WHERE id = 2")
        report = api.remove_toxic("fate_pg", "cut", effect=True)
        assert report is not None
        assert report["effect"] == {"connections_reset": 1}
        assert report["seen"]["exchanges"] == 3
        # the server saw the reset and aborted the transaction: its row lock is released
        # (were it still open, this UPDATE would wait for it and time out)
        await direct.execute("SET lock_timeout = '5s'")
        await direct.execute("UPDATE fate_acct SET balance = balance WHERE id = 1")
        rows = await direct.fetch("SELECT id, balance FROM fate_acct ORDER BY id")
        assert [tuple(r) for r in rows] == [(1, 100), (2, 0)]  # all or nothing: nothing
    finally:
        pooled.terminate()
        await direct.execute("DROP TABLE IF EXISTS fate_acct")
        await direct.close()
