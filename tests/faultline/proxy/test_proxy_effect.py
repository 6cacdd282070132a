"""Every toxic reports what it did: ``seen``/``effect`` counters, over real TCP.

Each test drives real connections through a real ``faultline proxy serve`` and checks
the counters against what the client and the upstream observed; a toxic that did
nothing must report all-zero effects.
"""

from __future__ import annotations

import http.client
import http.server
import json
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from proxy_helpers import (
    ServedProxy,
    Upstream,
    connect,
    fired,
    read_to_end,
    recv_all,
    turn,
)

from faultline.proxy.client import ProxyAPIError, ProxyClient

MakeUpstream = Callable[[Callable[[socket.socket, Upstream], None]], Upstream]


def replies_then_closes(conn: socket.socket, up: Upstream) -> None:
    up.received.append(conn.recv(1024))
    conn.sendall(b"bye\n")


def test_latency_counts_delayed_chunks_and_seen(api: ProxyClient, echo_upstream: Upstream) -> None:
    proxy = api.create_proxy("lat_fx", upstream=echo_upstream.address)
    api.add_toxic("lat_fx", type="latency", attributes={"latency": 20})
    with connect(proxy) as sock:
        for _ in range(3):
            assert turn(sock, b"x" * 16) == b"x" * 16
        live = api.toxic_effect("lat_fx", "latency_downstream")  # connection still open
    assert live["seen"] == {"connections": 1, "exchanges": 3, "bytes": 48}
    effect = live["effect"]
    assert set(effect) == {"chunks_delayed", "bytes_delayed", "delay_ms"}
    assert effect["bytes_delayed"] == 48
    assert effect["chunks_delayed"] >= 3
    assert effect["delay_ms"] == 20 * effect["chunks_delayed"]


def test_remove_with_effect_returns_final_counters_and_event(
    server: ServedProxy, api: ProxyClient, echo_upstream: Upstream
) -> None:
    proxy = api.create_proxy("rm_fx", upstream=echo_upstream.address)
    _, since = api.events()
    api.add_toxic("rm_fx", type="timeout", attributes={"timeout": 0})
    with connect(proxy, timeout=3) as sock:
        sock.sendall(b"hello")
        time.sleep(0.2)
        report = api.remove_toxic("rm_fx", "timeout_downstream", effect=True)
        assert read_to_end(sock)[0] == b""  # removing the timeout closed what it held
    assert report == {
        "seen": {"connections": 1, "exchanges": 1, "bytes": 5},
        "effect": {"connections_stalled": 1, "connections_closed": 1, "bytes_dropped": 5},
    }
    events, _ = api.events(since)
    removed = [e for e in events if e["event"] == "toxic_removed"]
    assert removed[0]["seen"] == report["seen"]
    assert removed[0]["effect"] == report["effect"]
    # the stalled firing was reported before the removal
    kinds = [e["event"] for e in events]
    assert kinds.index("toxic_fired") < kinds.index("toxic_removed")


def test_delete_without_query_stays_toxiproxy_204(server: ServedProxy, api: ProxyClient,
                                                   echo_upstream: Upstream) -> None:
    api.create_proxy("rm204", upstream=echo_upstream.address)
    api.add_toxic("rm204", type="latency")
    assert api.remove_toxic("rm204", "latency_downstream") is None
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    api.add_toxic("rm204", type="latency")
    conn.request("DELETE", "/proxies/rm204/toxics/latency_downstream")
    response = conn.getresponse()
    assert (response.status, response.read()) == (204, b"")
    conn.close()


@pytest.mark.parametrize(("toxic", "attributes", "stream", "expected"), [
    ("reset_peer", {"timeout": 0}, "downstream", {"connections_reset": 1}),
    ("lost_ack", {}, "downstream", {"replies_dropped": 1, "connections_reset": 1}),
    ("lost_ack", {}, "upstream", {"requests_dropped": 1, "connections_reset": 1}),
])
def test_toxics_that_reset(api: ProxyClient, echo_upstream: Upstream, toxic: str,
                           attributes: dict[str, Any], stream: str,
                           expected: dict[str, int]) -> None:
    proxy = api.create_proxy("rst_fx", upstream=echo_upstream.address)
    api.add_toxic("rst_fx", type=toxic, stream=stream, attributes=attributes)
    with connect(proxy) as sock:
        sock.sendall(b"PAY 1\n")
        assert read_to_end(sock) == (b"", True)
    report = api.remove_toxic("rst_fx", f"{toxic}_{stream}", effect=True)
    assert report is not None
    assert report["effect"] == expected
    assert report["seen"]["connections"] == 1


def test_limit_data_counts_the_cut_and_an_unreached_limit_counts_nothing(
    api: ProxyClient, echo_upstream: Upstream
) -> None:
    proxy = api.create_proxy("lim_fx", upstream=echo_upstream.address)
    api.add_toxic("lim_fx", type="limit_data", attributes={"bytes": 1000})
    with connect(proxy) as sock:
        sock.sendall(bytes(3000))
        assert len(recv_all(sock)) == 1000
    effect = api.toxic_effect("lim_fx", "limit_data_downstream")["effect"]
    assert effect["connections_closed"] == 1
    assert 0 < effect["bytes_cut"] <= 2000
    api.remove_toxic("lim_fx", "limit_data_downstream")
    api.add_toxic("lim_fx", type="limit_data", attributes={"bytes": 10**6})
    with connect(proxy) as sock:  # attached, exposed, but never reaching its limit
        assert turn(sock, b"y" * 100) == b"y" * 100
    report = api.remove_toxic("lim_fx", "limit_data_downstream", effect=True)
    assert report == {"seen": {"connections": 1, "exchanges": 1, "bytes": 100},
                      "effect": {"connections_closed": 0, "bytes_cut": 0}}


def test_toxicity_zero_is_seen_but_has_no_effect(api: ProxyClient, echo_upstream: Upstream) -> None:
    proxy = api.create_proxy("zero_fx", upstream=echo_upstream.address)
    api.add_toxic("zero_fx", type="reset_peer", toxicity=0.0)
    for _ in range(3):
        with connect(proxy) as sock:
            assert turn(sock, b"ok") == b"ok"
    report = api.remove_toxic("zero_fx", "reset_peer_downstream", effect=True)
    assert report == {"seen": {"connections": 3, "exchanges": 3, "bytes": 6},
                      "effect": {"connections_reset": 0}}


def test_bandwidth_slicer_slow_close_connect_delay(api: ProxyClient, echo_upstream: Upstream,
                                                   make_upstream: MakeUpstream) -> None:
    proxy = api.create_proxy("misc_fx", upstream=echo_upstream.address)
    api.add_toxic("misc_fx", type="bandwidth", attributes={"rate": 100})
    api.add_toxic("misc_fx", type="slicer", stream="upstream",
                  attributes={"average_size": 100, "size_variation": 20, "delay": 0})
    api.add_toxic("misc_fx", type="connect_delay", attributes={"delay": 50})
    with connect(proxy) as sock:
        assert turn(sock, bytes(20_000)) == bytes(20_000)  # 20 KB at 100 KB/s: ~200 ms
    bw = api.remove_toxic("misc_fx", "bandwidth_downstream", effect=True)
    sl = api.remove_toxic("misc_fx", "slicer_upstream", effect=True)
    cd = api.remove_toxic("misc_fx", "connect_delay_downstream", effect=True)
    assert bw is not None
    assert sl is not None
    assert cd is not None
    assert bw["effect"]["bytes_throttled"] == 20_000
    assert 100 <= bw["effect"]["delay_ms"] <= 260  # 200 planned; less if bytes came late
    assert sl["effect"]["chunks_sliced"] >= 1
    assert sl["effect"]["slices"] >= 100
    assert cd["effect"] == {"connects_delayed": 1, "delay_ms": 50}
    up = make_upstream(replies_then_closes)
    closing = api.create_proxy("sc_fx", upstream=up.address)
    api.add_toxic("sc_fx", type="slow_close", attributes={"delay": 50})
    with connect(closing) as sock:
        sock.sendall(b"hi")
        assert recv_all(sock) == b"bye\n"
    assert api.toxic_effect("sc_fx", "slow_close_downstream")["effect"] == {"closes_delayed": 1}


class _Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def http_address() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_http_error_counts_answers_replaced(api: ProxyClient, http_address: str) -> None:
    proxy = api.create_proxy("http_fx", upstream=http_address)
    api.add_toxic("http_fx", type="http_error", attributes={"status": 503})
    for _ in range(2):
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(f"http://{proxy['listen']}/", timeout=5)
    assert api.toxic_effect("http_fx", "http_error_downstream")["effect"] == {
        "answers_replaced": 2}


def test_busy_toxic_cannot_flood_the_events(server: ServedProxy, api: ProxyClient,
                                            echo_upstream: Upstream) -> None:
    proxy = api.create_proxy("busy", upstream=echo_upstream.address)
    _, since = api.events()
    api.add_toxic("busy", type="reset_peer")
    start = time.monotonic()
    resets = 0
    while time.monotonic() - start < 2.0:
        with connect(proxy) as sock:
            sock.sendall(b"x")
            resets += read_to_end(sock)[1]
    elapsed = time.monotonic() - start
    report = api.remove_toxic("busy", "reset_peer_downstream", effect=True)
    assert report is not None
    events, _ = api.events(since)
    firings = fired(events, "reset_peer_downstream")
    total = sum(int(e["count"]) for e in firings)  # type: ignore[call-overload]
    assert resets >= 20
    assert total == report["effect"]["connections_reset"] == resets
    assert len(firings) <= 2 + elapsed / 1.0  # the first at once, then one per second
    decisions = [d for e in firings for d in e["decisions"]]  # type: ignore[attr-defined]
    more = sum(int(e["decisions_more"]) for e in firings)  # type: ignore[call-overload]
    assert len(decisions) + more == resets  # one decision per connection, in order
    assert decisions == sorted(decisions)
    lines = [json.loads(line) for line in server.events_file.read_text().splitlines()]
    assert sum(1 for e in lines if e["event"] == "toxic_fired"
               and e["proxy"] == "busy") == len(firings)


def test_disabling_a_proxy_counts_the_connections_it_cut(api: ProxyClient,
                                                         echo_upstream: Upstream) -> None:
    proxy = api.create_proxy("down_fx", upstream=echo_upstream.address)
    assert api.proxy_effect("down_fx") == {"disabled_since": None, "disabled_until": None,
                                           "effect": {"connections_cut": 0,
                                                      "bytes_discarded": 0}}
    socks = [connect(proxy) for _ in range(3)]
    for sock in socks:
        assert turn(sock, b"live") == b"live"
    _, since = api.events()
    before = time.monotonic()
    api.disable_proxy("down_fx")
    window = api.proxy_effect("down_fx")
    assert window is not None
    assert window["effect"]["connections_cut"] == 3
    assert before <= window["disabled_since"] <= time.monotonic()
    assert window["disabled_until"] is None
    api.enable_proxy("down_fx")
    for sock in socks:
        sock.close()
    events, _ = api.events(since)
    disabled = next(e for e in events if e["event"] == "proxy_disabled")
    enabled = next(e for e in events if e["event"] == "proxy_enabled")
    assert disabled["effect"]["connections_cut"] == 3
    assert enabled["effect"] == {"connections_cut": 3, "bytes_discarded": 0}
    assert enabled["disabled_since"] == window["disabled_since"]
    assert enabled["disabled_until"] >= enabled["disabled_since"]


class _ToxiproxyLike(http.server.BaseHTTPRequestHandler):
    """A real Toxiproxy's answers to what it does not know: 204 ignoring the query, and
    gorilla/mux's text 404 for an unknown route."""

    def do_DELETE(self) -> None:
        self.send_response(204)
        self.end_headers()

    def do_POST(self) -> None:  # a toxic created: Go's decoder dropped the unknown "scope"
        sent = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        sent.pop("scope", None)
        body = json.dumps({"name": f"{sent['type']}_{sent['stream']}", **sent}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        body = b"404 page not found\n"
        self.send_response(404)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_client_extensions_against_a_toxiproxy_that_lacks_them() -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _ToxiproxyLike)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        client = ProxyClient(f"http://127.0.0.1:{server.server_address[1]}")
        assert client.remove_toxic("p", "t", effect=True) is None
        assert client.proxy_effect("p") is None
        assert client.add_toxic("p", type="latency")["name"] == "latency_downstream"
        with pytest.raises(ProxyAPIError, match="ignored scope"):  # never silently per connection
            client.add_toxic("p", type="lost_ack", scope="exchange")
    finally:
        server.shutdown()
        server.server_close()
