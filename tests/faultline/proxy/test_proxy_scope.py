"""Toxicity per exchange, and one seed replaying every decision, over real TCP.

The binomial test is the one the brief asks for: 20 pooled connections opened before
the fault, toxicity 0.1, many exchanges each. With ``scope: "exchange"`` the share of
hit exchanges must be within 4 sigma of 0.1 and spread over the connections; with
``scope: "connection"`` every connection is hit in all its exchanges or in none.
"""

from __future__ import annotations

import math
import socket
import threading
import time
from typing import Any

import pytest
from proxy_helpers import (
    ServedProxy,
    Upstream,
    connect,
    fired,
    pattern_seed,
    read_to_end,
    recv_all,
    turn,
    wait_idle,
)

import faultline.proxy
from faultline.cli import main as cli_main
from faultline.proxy._seed import decision
from faultline.proxy.client import ProxyClient

POOL = 20
TURNS = 30
LATENCY = 400  # ms: a hit exchange; an unhit one takes well under HIT_MS even on a busy box
HIT_MS = 200


def drive_pool(socks: list[socket.socket], turns: int) -> list[list[bool]]:
    """Every connection does ``turns`` echo exchanges at once; which ones were slow."""
    slow: list[list[bool]] = [[] for _ in socks]

    def run(i: int) -> None:
        for _ in range(turns):
            start = time.perf_counter()
            turn(socks[i], b"q" * 8)
            slow[i].append((time.perf_counter() - start) * 1000 > HIT_MS)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(socks))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return slow


def test_exchange_scope_hits_a_binomial_share_of_exchanges_over_all_connections(
    api: ProxyClient, echo_upstream: Upstream
) -> None:
    proxy = api.create_proxy("binom", upstream=echo_upstream.address)
    socks = [connect(proxy, timeout=30) for _ in range(POOL)]
    try:
        for sock in socks:  # the pool is warm before the fault
            turn(sock, b"warm")
        api.set_seed(20240601, label="binomial")
        api.add_toxic("binom", type="latency", toxicity=0.1, scope="exchange",
                      attributes={"latency": LATENCY})
        slow = drive_pool(socks, TURNS)
        report = api.remove_toxic("binom", "latency_downstream", effect=True)
    finally:
        for sock in socks:
            sock.close()
    assert report is not None
    n = POOL * TURNS
    hits = sum(map(sum, slow))
    sigma = math.sqrt(n * 0.1 * 0.9)
    print(f"exchange scope: {hits} of {n} exchanges hit (expected {n * 0.1:.0f} "
          f"+- {4 * sigma:.1f}), connections hit: {sum(any(s) for s in slow)}/{POOL}")
    assert abs(hits - n * 0.1) <= 4 * sigma
    # the toxic saw every exchange and decided each one (hash decisions: exact count)
    assert report["seen"]["exchanges"] == n
    expected = sum(decision(20240601, "binom", "latency_downstream", "exchange", k) < 0.1
                   for k in range(n))
    assert report["effect"]["chunks_delayed"] == expected
    assert abs(hits - expected) <= 6  # the client saw what the proxy did (load hiccups)
    assert sum(any(s) for s in slow) >= POOL * 0.6  # spread: P(no hit in 30) = 4%
    assert all(sum(s) < TURNS for s in slow)


def test_connection_scope_hits_whole_connections(api: ProxyClient,
                                                 echo_upstream: Upstream) -> None:
    proxy = api.create_proxy("whole", upstream=echo_upstream.address)
    socks = [connect(proxy, timeout=30) for _ in range(POOL)]
    try:
        for sock in socks:
            turn(sock, b"warm")
        api.set_seed(99, label="connection scope")
        api.add_toxic("whole", type="latency", toxicity=0.3, attributes={"latency": LATENCY})
        slow = drive_pool(socks, 5)
    finally:
        for sock in socks:
            sock.close()
    # pooled connections are numbered oldest first: connection i drew decision i
    expected = [decision(99, "whole", "latency_downstream", "connection", i) < 0.3
                for i in range(POOL)]
    assert any(expected)
    assert not all(expected)
    for i, turns in enumerate(slow):
        if expected[i]:
            assert all(turns), (i, turns)
        else:
            assert sum(turns) <= 1, (i, turns)  # at most one load hiccup


def request_reply(conn: socket.socket, up: Upstream) -> None:
    """An upstream that answers each line with ``OK <line>`` (a 'statement')."""
    pending = b""
    while True:
        chunk = conn.recv(4096)
        if not chunk:
            return
        pending += chunk
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            up.received.append(line)
            conn.sendall(b"OK " + line + b"\n" + b"." * 40 + b"\n")


def statement(sock: socket.socket, text: bytes) -> bytes:
    sock.sendall(text + b"\n")
    reply = b""
    while reply.count(b"\n") < 2:
        chunk = sock.recv(4096)
        if not chunk:
            return reply
        reply += chunk
    return reply


def test_exchange_scope_per_toxic(api: ProxyClient, make_upstream: Any) -> None:
    up = make_upstream(request_reply)
    proxy = api.create_proxy("perex", upstream=up.address)

    # reset_peer upstream: the connection is cut between statements 2 and 3
    api.set_seed(pattern_seed("perex", "cut", "exchange", [False, False, True]))
    with connect(proxy) as sock:
        api.add_toxic("perex", name="cut", type="reset_peer", stream="upstream",
                      toxicity=0.5, scope="exchange")
        assert statement(sock, b"BEGIN").startswith(b"OK BEGIN")
        assert statement(sock, b"UPDATE a").startswith(b"OK UPDATE")
        sock.sendall(b"UPDATE b\n")
        assert read_to_end(sock) == (b"", True)
    assert up.received == [b"BEGIN", b"UPDATE a"]  # the third never reached the server
    api.remove_toxic("perex", "cut")

    # lost_ack downstream: statement 2 is processed, its reply dropped, the client reset
    up.received.clear()
    api.set_seed(pattern_seed("perex", "ack", "exchange", [False, True]))
    with connect(proxy) as sock:
        api.add_toxic("perex", name="ack", type="lost_ack", toxicity=0.5, scope="exchange")
        assert statement(sock, b"PAY 1").startswith(b"OK PAY 1")
        sock.sendall(b"PAY 2\n")
        assert read_to_end(sock) == (b"", True)
    assert up.received == [b"PAY 1", b"PAY 2"]
    assert api.remove_toxic("perex", "ack", effect=True)["effect"] == {  # type: ignore[index]
        "replies_dropped": 1, "connections_reset": 1}

    # limit_data downstream: the second reply is cut after 5 bytes, the first is whole
    api.set_seed(pattern_seed("perex", "lim", "exchange", [False, True]))
    with connect(proxy) as sock:
        api.add_toxic("perex", name="lim", type="limit_data", toxicity=0.5, scope="exchange",
                      attributes={"bytes": 5})
        assert len(statement(sock, b"SELECT 1")) == len(b"OK SELECT 1\n") + 41
        sock.sendall(b"SELECT 2\n")
        assert recv_all(sock) == b"OK SE"
    api.remove_toxic("perex", "lim")

    # timeout: the second exchange stalls (nothing comes back), then the connection closes
    api.set_seed(pattern_seed("perex", "hold", "exchange", [False, True]))
    with connect(proxy, timeout=5) as sock:
        api.add_toxic("perex", name="hold", type="timeout", toxicity=0.5, scope="exchange",
                      attributes={"timeout": 300})
        assert statement(sock, b"A").startswith(b"OK A")
        start = time.monotonic()
        sock.sendall(b"B\n")
        assert read_to_end(sock)[0] == b""
        assert 0.25 <= time.monotonic() - start <= 3
    report = api.remove_toxic("perex", "hold", effect=True)
    assert report is not None
    assert report["effect"]["connections_stalled"] == 1
    assert report["effect"]["connections_closed"] == 1

    # slicer: only the hit exchange is sliced
    api.set_seed(pattern_seed("perex", "sl", "exchange", [True, False, False]))
    with connect(proxy) as sock:
        api.add_toxic("perex", name="sl", type="slicer", toxicity=0.5, scope="exchange",
                      attributes={"average_size": 4, "size_variation": 1, "delay": 10})
        for i in range(3):
            assert statement(sock, b"S%d" % i).startswith(b"OK S%d" % i)
    assert api.remove_toxic("perex", "sl", effect=True)["effect"]["chunks_sliced"] == 1  # type: ignore[index]


def hit_decisions(api: ProxyClient, since: int, toxic: str) -> list[int]:
    events, _ = api.events(since)
    return [d for e in fired(events, toxic) for d in e["decisions"]]  # type: ignore[attr-defined]


def drive_drill(server: ServedProxy, api: ProxyClient, proxy: dict[str, Any], seed: int,
                extra_connections: int) -> list[int]:
    """One 'drill' on the shared server: reseed, fault, traffic, heal; the hits."""
    wait_idle(server, "replay")  # the previous drill's pool is gone
    for _ in range(extra_connections):  # earlier traffic: shifts the connection ordinals
        with connect(proxy) as sock:
            turn(sock, b"old")
    wait_idle(server, "replay")
    pool = [connect(proxy) for _ in range(4)]
    try:
        _, since = api.events()
        api.set_seed(seed, label=f"drill with seed {seed}")
        api.add_toxic("replay", name="ex", type="latency", toxicity=0.3, scope="exchange",
                      attributes={"latency": 1})
        api.add_toxic("replay", name="co", type="latency", stream="upstream", toxicity=0.5,
                      attributes={"latency": 1})
        for k in range(40):  # one client, round robin: the same exchange order every run
            turn(pool[k % len(pool)], b"z" * 4)
        api.remove_toxic("replay", "ex")
        api.remove_toxic("replay", "co")
        by_exchange = hit_decisions(api, since, "ex")
        by_connection = hit_decisions(api, since, "co")
    finally:
        for sock in pool:
            sock.close()
    return [*by_exchange, -1, *by_connection]


def test_one_seed_replays_every_decision_on_a_shared_server(
    server: ServedProxy, api: ProxyClient, echo_upstream: Upstream
) -> None:
    proxy = api.create_proxy("replay", upstream=echo_upstream.address)
    first = drive_drill(server, api, proxy, seed=11, extra_connections=0)
    again = drive_drill(server, api, proxy, seed=11, extra_connections=5)  # other ordinals
    other = drive_drill(server, api, proxy, seed=12, extra_connections=0)
    assert first == again
    assert first != other
    split = first.index(-1)
    assert first[:split] == [k for k in range(40)
                             if decision(11, "replay", "ex", "exchange", k) < 0.3]
    # connection scope: the pool's 4 connections drew decisions 0..3 (oldest first),
    # whatever their ordinals on the server were
    assert first[split + 1:] == [k for k in range(4)
                                 if decision(11, "replay", "co", "connection", k) < 0.5]
    seed_events = [e for e in api.events()[0] if e["event"] == "seed_set"]
    assert seed_events[-1]["seed"] == 12
    assert seed_events[-1]["label"] == "drill with seed 12"
    assert api.get_seed()["seed"] == 12


def test_scope_is_echoed_only_when_not_the_default_and_clients_cope(
    server: ServedProxy, api: ProxyClient, echo_upstream: Upstream
) -> None:
    api.create_proxy("echo_scope", upstream=echo_upstream.address)
    plain = api.add_toxic("echo_scope", type="latency")
    assert "scope" not in plain
    per = api.add_toxic("echo_scope", type="latency", stream="upstream", scope="exchange")
    assert per["scope"] == "exchange"
    changed = api.update_toxic("echo_scope", "latency_downstream", scope="exchange")
    assert changed["scope"] == "exchange"
    assert "scope" not in api.update_toxic("echo_scope", "latency_upstream", scope="connection")
    toxiproxy = pytest.importorskip("toxiproxy")
    from toxiproxy.api import APIConsumer

    tp = toxiproxy.Toxiproxy()
    tp.update_api_consumer("127.0.0.1", server.port)
    try:  # toxiproxy-python builds Toxic(**json): an extra field must not break it
        assert set(tp.get_proxy("echo_scope").toxics()) == {"latency_downstream",
                                                             "latency_upstream"}
    finally:
        APIConsumer.port = 8474


def test_a_server_without_seed_draws_and_reports_one(echo_upstream: Upstream) -> None:
    with faultline.proxy.ProxyServer(port=0) as srv:
        info = ProxyClient(srv.url).get_seed()
        assert info["source"] == "generated"
        assert info["seed"] == srv.seed
        assert isinstance(info["seed"], int)


def test_cli_seed_scope_and_effect(server: ServedProxy, api: ProxyClient,
                                   echo_upstream: Upstream, capsys: Any) -> None:
    url = ["--url", server.url]
    proxy = api.create_proxy("cli_fx", upstream=echo_upstream.address)
    assert cli_main(["proxy", "seed", "5", "--label", "from the cli", *url]) == 0
    assert "seed 5 set (from the cli)" in capsys.readouterr().out
    assert api.get_seed()["label"] == "from the cli"
    assert cli_main(["proxy", "toxic", "add", "cli_fx", "-t", "reset_peer", "--scope",
                     "exchange", *url]) == 0
    assert api.get_toxic("cli_fx", "reset_peer_downstream")["scope"] == "exchange"
    with connect(proxy) as sock:
        sock.sendall(b"x")
        read_to_end(sock)
    capsys.readouterr()
    assert cli_main(["proxy", "toxic", "remove", "cli_fx", "-n", "reset_peer_downstream",
                     *url]) == 0
    out = capsys.readouterr().out
    assert '"connections_reset": 1' in out
