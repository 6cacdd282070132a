"""Every toxic over real TCP, through a real ``faultline proxy serve`` subprocess.

Timing assertions use medians and the tolerances of the issue (latency within 2 ms at
the median, bandwidth within 10%); everything else is about bytes and socket errors.
"""

from __future__ import annotations

import http.server
import random
import socket
import statistics
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from proxy_helpers import Upstream, connect, recv_all, recv_exactly

from faultline.proxy._seed import decision, stub_rng
from faultline.proxy._toxiproxy_toxics import slice_offsets
from faultline.proxy.client import ProxyClient

MakeUpstream = Callable[[Callable[[socket.socket, Upstream], None]], Upstream]


def proxy_for(api: ProxyClient, name: str, upstream: Upstream) -> dict[str, Any]:
    return api.create_proxy(name, upstream=upstream.address)


def read_to_end(sock: socket.socket) -> tuple[bytes, bool]:
    """Everything the peer sends, and whether the connection ended in a reset."""
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        return data, True
    return data, False


def round_trips(sock: socket.socket, count: int, size: int = 16) -> list[float]:
    """Milliseconds per echo round trip."""
    payload = b"x" * size
    out = []
    for _ in range(count):
        start = time.perf_counter()
        sock.sendall(payload)
        recv_exactly(sock, size)
        out.append((time.perf_counter() - start) * 1000.0)
    return out


def test_latency_median_within_2ms_and_applies_to_live_connection(
    api: ProxyClient, echo_upstream: Upstream
) -> None:
    proxy = proxy_for(api, "lat", echo_upstream)
    measured = []
    with connect(proxy) as sock:
        # the machine is shared: more attempts are allowed if a load burst hit one
        for _ in range(3):
            base = statistics.median(round_trips(sock, 11))
            api.add_toxic("lat", type="latency", attributes={"latency": 30})  # live connection
            with_toxic = statistics.median(round_trips(sock, 15))
            api.remove_toxic("lat", "latency_downstream")
            measured.append(with_toxic - base)
            print(f"latency 30 ms measured as {measured[-1]:.2f} ms")
            if abs(measured[-1] - 30.0) <= 2.0:
                break
        after = statistics.median(round_trips(sock, 5))
    assert abs(measured[-1] - 30.0) <= 2.0, measured
    assert after < 15.0


def test_upstream_latency_delays_requests(api: ProxyClient, echo_upstream: Upstream) -> None:
    proxy = proxy_for(api, "latup", echo_upstream)
    api.add_toxic("latup", type="latency", stream="upstream", attributes={"latency": 20})
    with connect(proxy) as sock:
        added = statistics.median(round_trips(sock, 9))
    assert 18.0 <= added <= 30.0


def test_seeded_jitter_repeats(api: ProxyClient, echo_upstream: Upstream) -> None:
    def run() -> list[float]:
        proxy = proxy_for(api, "jit", echo_upstream)
        api.add_toxic("jit", type="latency", attributes={"latency": 60, "jitter": 50})
        with connect(proxy) as sock:
            samples = round_trips(sock, 8)
        api.delete_proxy("jit")  # a fresh proxy counts its connections from 0 again
        return samples

    # A busy machine only ever makes a round trip later: the minimum of two runs is
    # the drawn delay plus little noise.
    first = [min(a, b) for a, b in zip(run(), run(), strict=True)]
    second = [min(a, b) for a, b in zip(run(), run(), strict=True)]
    assert max(first) - min(first) > 20.0  # really jittered
    close = [abs(a - b) <= 5.0 for a, b in zip(first, second, strict=True)]
    assert sum(close) >= 6, (first, second)


def test_rng_derivation_is_stable_and_distinct() -> None:
    a = [stub_rng(7, "p", "t", 0).random() for _ in range(3)]
    assert a == [stub_rng(7, "p", "t", 0).random() for _ in range(3)]
    assert stub_rng(7, "p", "t", 0).random() != stub_rng(8, "p", "t", 0).random()
    assert stub_rng(7, "p", "t", 0).random() != stub_rng(7, "p", "t", 1).random()
    assert decision(7, "p", "t", "exchange", 3) == decision(7, "p", "t", "exchange", 3)
    draws = {decision(7, "p", "t", scope, n) for scope in ("connection", "exchange")
             for n in range(50)}
    assert len(draws) == 100  # distinct per scope and ordinal
    assert all(0.0 <= d < 1.0 for d in draws)
    assert decision(7, "p", "t", "exchange", 3) != decision(8, "p", "t", "exchange", 3)
    offsets = slice_offsets(stub_rng(1, "p", "s", 0), 0, 1000, 100, 30)
    assert offsets[0] == 0
    assert offsets[-1] == 1000
    pieces = [offsets[i] - offsets[i - 1] for i in range(1, len(offsets), 2)]
    assert sum(pieces) == 1000
    assert all(0 < p <= 130 for p in pieces)


def test_toxicity_is_rolled_once_per_connection(api: ProxyClient, echo_upstream: Upstream) -> None:
    proxy = proxy_for(api, "roll", echo_upstream)
    api.add_toxic("roll", type="latency", toxicity=0.5, attributes={"latency": 40})
    slow = []
    for _ in range(12):
        with connect(proxy) as sock:
            first, second = round_trips(sock, 2)
        assert (first > 30) == (second > 30), (first, second)
        slow.append(first > 30)
    assert any(slow)
    assert not all(slow)


def test_bandwidth_within_10_percent(api: ProxyClient, echo_upstream: Upstream) -> None:
    proxy = proxy_for(api, "bw", echo_upstream)
    api.add_toxic("bw", type="bandwidth", stream="upstream", attributes={"rate": 100})
    payload = bytes(range(256)) * 200  # 51,200 bytes at 100 KB/s: 0.512 s
    with connect(proxy) as sock:
        start = time.perf_counter()
        sock.sendall(payload)
        assert recv_exactly(sock, len(payload)) == payload
        elapsed = time.perf_counter() - start
    assert abs(elapsed - 0.512) <= 0.0512, elapsed


def test_timeout_holds_then_closes(api: ProxyClient, echo_upstream: Upstream) -> None:
    proxy = proxy_for(api, "to", echo_upstream)
    api.add_toxic("to", type="timeout", attributes={"timeout": 300})
    start = time.perf_counter()
    with connect(proxy) as sock:
        sock.sendall(b"hello")
        try:
            got = recv_all(sock)
        except ConnectionResetError:
            got = b""
        elapsed = time.perf_counter() - start
    assert got == b""  # the reply was held, never delivered
    assert 0.25 <= elapsed <= 1.5, elapsed


def test_timeout_zero_holds_until_removed(api: ProxyClient, echo_upstream: Upstream) -> None:
    proxy = proxy_for(api, "hold", echo_upstream)
    api.add_toxic("hold", type="timeout", attributes={"timeout": 0})
    with connect(proxy, timeout=0.5) as sock:
        sock.sendall(b"hello")
        with pytest.raises(TimeoutError):
            sock.recv(10)
        api.remove_toxic("hold", "timeout_downstream")
        sock.settimeout(3)
        assert read_to_end(sock)[0] == b""  # removing the toxic closed what it held


def test_reset_peer_gives_econnreset(api: ProxyClient, echo_upstream: Upstream) -> None:
    proxy = proxy_for(api, "rst", echo_upstream)
    api.add_toxic("rst", type="reset_peer", attributes={"timeout": 0})
    with connect(proxy) as sock:
        sock.sendall(b"hello")
        assert read_to_end(sock) == (b"", True)


def replies_then_closes(conn: socket.socket, up: Upstream) -> None:
    up.received.append(conn.recv(1024))
    conn.sendall(b"bye\n")


def test_reset_peer_at_toxicity_zero_keeps_normal_close(
    api: ProxyClient, make_upstream: MakeUpstream
) -> None:
    up = make_upstream(replies_then_closes)
    proxy = proxy_for(api, "rst0", up)
    api.add_toxic("rst0", type="reset_peer", toxicity=0.0, attributes={"timeout": 0})
    with connect(proxy) as sock:
        sock.sendall(b"hi")
        assert recv_all(sock) == b"bye\n"  # a FIN, not an RST


def test_limit_data_closes_after_exactly_n_bytes(api: ProxyClient, echo_upstream: Upstream) -> None:
    proxy = proxy_for(api, "lim", echo_upstream)
    api.add_toxic("lim", type="limit_data", attributes={"bytes": 1000})
    payload = bytes(range(250)) * 12  # 3000 bytes
    with connect(proxy) as sock:
        sock.sendall(payload)
        got = recv_all(sock)
    assert got == payload[:1000]


def test_slicer_delivers_same_bytes_in_pieces(api: ProxyClient, echo_upstream: Upstream) -> None:
    proxy = proxy_for(api, "sl", echo_upstream)
    api.add_toxic("sl", type="slicer",
                  attributes={"average_size": 100, "size_variation": 40, "delay": 3000})
    payload = bytes(range(200)) * 10  # 2000 bytes
    chunks = []
    with connect(proxy) as sock:
        sock.sendall(payload)
        got = b""
        while len(got) < len(payload):
            chunk = sock.recv(65536)
            assert chunk
            chunks.append(chunk)
            got += chunk
    assert got == payload
    assert len(chunks) >= 5, [len(c) for c in chunks]


def test_slow_close_delays_the_close(api: ProxyClient, make_upstream: MakeUpstream) -> None:
    up = make_upstream(replies_then_closes)
    proxy = proxy_for(api, "sc", up)
    api.add_toxic("sc", type="slow_close", attributes={"delay": 300})
    with connect(proxy) as sock:
        start = time.perf_counter()
        sock.sendall(b"hi")
        assert recv_all(sock) == b"bye\n"
        elapsed = time.perf_counter() - start
    assert elapsed >= 0.28, elapsed


def acks_after_commit(conn: socket.socket, up: Upstream) -> None:
    request = b""
    while not request.endswith(b"\n"):
        chunk = conn.recv(1024)
        if not chunk:
            return
        request += chunk
    up.received.append(request)  # "committed"
    conn.sendall(b"OK-ACCEPTED\n")
    conn.recv(1024)  # wait for the client (or the proxy) to go away


def test_lost_ack_upstream_commits_client_is_reset(
    api: ProxyClient, make_upstream: MakeUpstream
) -> None:
    up = make_upstream(acks_after_commit)
    proxy = proxy_for(api, "ack", up)
    api.add_toxic("ack", type="lost_ack")
    with connect(proxy) as sock:
        sock.sendall(b"PAY 42\n")
        assert read_to_end(sock) == (b"", True)  # not one reply byte, and a reset
    assert up.received == [b"PAY 42\n"]


def test_lost_ack_after_bytes(api: ProxyClient, make_upstream: MakeUpstream) -> None:
    up = make_upstream(acks_after_commit)
    proxy = proxy_for(api, "ack3", up)
    api.add_toxic("ack3", type="lost_ack", attributes={"after_bytes": 3})
    with connect(proxy) as sock:
        sock.sendall(b"PAY 7\n")
        assert read_to_end(sock) == (b"OK-", True)
    assert up.received == [b"PAY 7\n"]


def test_connect_delay(api: ProxyClient, echo_upstream: Upstream) -> None:
    proxy = proxy_for(api, "cd", echo_upstream)
    api.add_toxic("cd", type="connect_delay", attributes={"delay": 300})
    start = time.perf_counter()
    with connect(proxy) as sock:
        round_trips(sock, 1)
        first = time.perf_counter() - start
        assert statistics.median(round_trips(sock, 3)) < 100  # only the handshake waits
    assert first >= 0.29, first


class _Hello(http.server.BaseHTTPRequestHandler):
    hits = 0

    def do_GET(self) -> None:
        type(self).hits += 1
        body = b'{"ok": true}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def http_upstream() -> Iterator[Upstream]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    _Hello.hits = 0
    threading.Thread(target=server.serve_forever, daemon=True).start()
    up = Upstream(lambda c, u: None)
    up.port = server.server_address[1]
    yield up
    server.shutdown()
    server.server_close()


def test_http_error_answers_429_with_retry_after(api: ProxyClient, http_upstream: Upstream) -> None:
    proxy = proxy_for(api, "http", http_upstream)
    url = f"http://{proxy['listen']}/hello"
    api.add_toxic("http", type="http_error", attributes={"status": 429, "retry_after": 7})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(url, timeout=5)
    assert err.value.code == 429
    assert err.value.headers["Retry-After"] == "7"
    assert _Hello.hits == 0  # never forwarded
    api.update_toxic("http", "http_error_downstream", attributes={"status": 503, "retry_after": 0})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(url, timeout=5)
    assert err.value.code == 503
    api.update_toxic("http", "http_error_downstream", toxicity=0.0)
    with urllib.request.urlopen(url, timeout=5) as response:
        assert response.status == 200
    assert _Hello.hits == 1


def test_toxic_fired_events(api: ProxyClient, make_upstream: MakeUpstream) -> None:
    up = make_upstream(acks_after_commit)
    proxy = proxy_for(api, "evt", up)
    _, since = api.events()
    api.add_toxic("evt", type="lost_ack")
    with connect(proxy) as sock:
        sock.sendall(b"PAY 1\n")
        assert read_to_end(sock) == (b"", True)
    events, _ = api.events(since)
    fired = [e for e in events if e["event"] == "toxic_fired"]
    assert len(fired) == 1
    assert fired[0]["proxy"] == "evt"
    assert fired[0]["toxic"]["type"] == "lost_ack"


def test_lost_ack_with_real_redis(api: ProxyClient, redis_server: Any) -> None:
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    proxy = api.create_proxy("redis_ack", upstream=f"127.0.0.1:{redis_server.port}")
    port = int(proxy["listen"].rsplit(":", 1)[1])
    direct = redis.Redis(port=redis_server.port)
    through = redis.Redis(port=port, socket_timeout=5, retry=Retry(NoBackoff(), 0))
    try:
        direct.delete("faultline:lost_ack")
        assert through.ping()  # a live pooled connection
        api.add_toxic("redis_ack", type="lost_ack")  # applies to it at once
        with pytest.raises(redis.ConnectionError):
            through.set("faultline:lost_ack", "charged")
        assert direct.get("faultline:lost_ack") == b"charged"  # it happened, once
        api.remove_toxic("redis_ack", "lost_ack_downstream")
        assert through.get("faultline:lost_ack") == b"charged"
    finally:
        through.close()
        direct.close()


@pytest.mark.parametrize("toxic", [None, "latency"])
def test_bulk_transfer_is_byte_exact_under_backpressure(
    api: ProxyClient, echo_upstream: Upstream, toxic: str | None
) -> None:
    proxy = proxy_for(api, f"bulk_{toxic}", echo_upstream)
    if toxic:
        api.add_toxic(proxy["name"], type=toxic, attributes={"latency": 1})
    payload = random.Random(5).randbytes(6 * 1024 * 1024)
    with connect(proxy, timeout=20) as sock:
        sender = threading.Thread(target=sock.sendall, args=(payload,))
        sender.start()
        got = bytearray()
        while len(got) < len(payload):
            chunk = sock.recv(1 << 20)
            assert chunk
            got += chunk
            if len(got) < len(payload) // 2:
                time.sleep(0.001)  # a slow reader: the proxy must hold back, not buffer it all
        sender.join()
    assert got == payload
