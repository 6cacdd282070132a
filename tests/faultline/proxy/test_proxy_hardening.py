"""The proxy API against a hostile review: loops, remote listeners, tokens, caps.

Each test is one finding of the review and failed before the fix.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from proxy_helpers import ROOT, ServedProxy, Upstream, connect, serve, stop, turn

import faultline.proxy
from faultline.proxy.client import ProxyAPIError, ProxyClient
from faultline.stack._embedded import free_port


def call(port: int, method: str, path: str, body: Any = None,
         headers: dict[str, str] | None = None) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request(method, path, body=None if body is None else json.dumps(body).encode(),
                 headers=headers or {})
    response = conn.getresponse()
    text = response.read().decode()
    conn.close()
    try:
        return response.status, json.loads(text)
    except ValueError:
        return response.status, text


def open_files(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


# -- loops -----------------------------------------------------------------------------
def test_a_proxy_cannot_loop_into_this_server(server: ServedProxy, api: ProxyClient,
                                             echo_upstream: Upstream) -> None:
    fds_before = open_files(server.proc.pid)
    port = free_port()
    status, body = call(server.port, "POST", "/proxies", {
        "name": "self", "listen": f"127.0.0.1:{port}", "upstream": f"127.0.0.1:{port}"})
    assert status == 400
    assert "loop" in body["error"]
    assert "its own listen address" in body["error"]
    a = api.create_proxy("a", upstream=echo_upstream.address)
    a_port = a["listen"].rsplit(":", 1)[1]
    for host in ("127.0.0.1", "localhost", "0.0.0.0"):
        with pytest.raises(ProxyAPIError) as err:
            api.create_proxy("b", upstream=f"{host}:{a_port}")
        assert err.value.status == 400
        assert "proxy 'a'" in err.value.message
    # a listener placed on another proxy's upstream closes the loop from the other side
    target = free_port()
    api.create_proxy("c", upstream=f"127.0.0.1:{target}")
    with pytest.raises(ProxyAPIError) as err:
        api.create_proxy("d", listen=f"127.0.0.1:{target}", upstream=echo_upstream.address)
    assert err.value.status == 400
    # update and populate are checked too, and a refused update changes nothing
    with pytest.raises(ProxyAPIError):
        api.update_proxy("a", upstream=a["listen"])
    assert api.get_proxy("a") == a
    with connect(a) as sock:
        assert turn(sock, b"still fine") == b"still fine"
    with pytest.raises(ProxyAPIError):
        api.update_proxy("c", listen=f"127.0.0.1:{target}")
    status, body = call(server.port, "POST", "/populate", [
        {"name": "p1", "listen": f"127.0.0.1:{port}", "upstream": echo_upstream.address},
        {"name": "p2", "listen": "127.0.0.1:0", "upstream": f"127.0.0.1:{port}"}])
    assert status == 400
    assert body["proxies"] is None
    assert set(api.proxies()) == {"a", "c"}
    fds_after = open_files(server.proc.pid)
    print(f"server open files: {fds_before} before, {fds_after} after the loop attempts")
    assert fds_after <= fds_before + 4  # the two listeners kept; no storm


# -- remote listeners and the API's own address ------------------------------------------------
@pytest.mark.parametrize("listen", ["0.0.0.0:0", "[::]:0", "8.8.8.8:0", "0:0"])
def test_non_loopback_listen_is_refused(server: ServedProxy, api: ProxyClient,
                                        echo_upstream: Upstream, listen: str) -> None:
    status, body = call(server.port, "POST", "/proxies", {
        "name": "wide", "listen": listen, "upstream": echo_upstream.address})
    assert status == 400
    assert body["error"].startswith("listen:")
    assert "--allow-remote-listen" in body["error"]
    assert "wide" not in api.proxies()


def test_an_empty_listen_host_is_loopback(api: ProxyClient, echo_upstream: Upstream) -> None:
    # Go would listen on every interface for ":0"; here an empty host is 127.0.0.1
    assert api.create_proxy("empty", listen=":0",
                            upstream=echo_upstream.address)["listen"].startswith("127.0.0.1:")


def test_remote_listen_needs_the_flag_for_proxies_and_api(tmp_path: Path,
                                                          echo_upstream: Upstream) -> None:
    served = serve(tmp_path, "--allow-remote-listen")
    try:
        proxy = served.client().create_proxy("wide", listen="0.0.0.0:0",
                                             upstream=echo_upstream.address)
        assert proxy["listen"].startswith("0.0.0.0:")
    finally:
        stop(served)
    out = subprocess.run(
        [sys.executable, "-m", "faultline", "proxy", "serve", "--host", "0.0.0.0",
         "--port", str(free_port())],
        cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert out.returncode == 1
    assert "--allow-remote-listen" in out.stderr
    with pytest.raises(ValueError, match="loopback"):
        faultline.proxy.ProxyServer(host="0.0.0.0", port=0)


# -- token ----------------------------------------------------------------------------------
def test_api_token(tmp_path: Path, echo_upstream: Upstream,
                   monkeypatch: pytest.MonkeyPatch) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("s3cret-token\n")
    served = serve(tmp_path, "--api-token-file", str(token_file))
    try:
        status, body = call(served.port, "GET", "/proxies")
        assert status == 401
        assert body["status"] == 401
        assert "Bearer" in body["error"]
        for wrong in ("Bearer nope", "Basic s3cret-token", "s3cret-token", "Bearer "):
            assert call(served.port, "GET", "/version", headers={"Authorization": wrong})[0] == 401
        assert call(served.port, "GET", "/proxies",
                    headers={"Authorization": "Bearer s3cret-token"}) == (200, {})
        with pytest.raises(ProxyAPIError) as err:
            ProxyClient(served.url, token="").proxies()
        assert err.value.status == 401
        monkeypatch.setenv("FAULTLINE_PROXY_TOKEN", "s3cret-token")
        client = ProxyClient(served.url)  # reads the same variable as the server
        assert client.create_proxy("tok", upstream=echo_upstream.address)["name"] == "tok"
    finally:
        stop(served)
    # the server reads FAULTLINE_PROXY_TOKEN too (inherited here from monkeypatch)
    served = serve(tmp_path)
    try:
        assert call(served.port, "GET", "/proxies")[0] == 401
        assert ProxyClient(served.url).proxies() == {}
    finally:
        stop(served)


# -- attribute validation -------------------------------------------------------------------
INVALID = [
    ({"type": "latency", "attributes": {"latency": -1}}, "latency must be between 0"),
    ({"type": "latency", "attributes": {"jitter": -5}}, "jitter must be between 0"),
    ({"type": "latency", "attributes": {"latency": 10**30}}, "cannot unmarshal number"),
    ({"type": "bandwidth", "attributes": {"rate": -100}}, "rate must be between 0"),
    ({"type": "limit_data", "attributes": {"bytes": -1}}, "bytes must be between 0"),
    ({"type": "slow_close", "attributes": {"delay": -1}}, "delay must be between 0"),
    ({"type": "timeout", "attributes": {"timeout": 10**12}}, "timeout must be between 0"),
    ({"type": "slicer", "attributes": {"average_size": 0}}, "average_size must be positive"),
    ({"type": "slicer", "attributes": {"average_size": 5, "size_variation": 5}},
     "size_variation must be smaller"),
    ({"type": "http_error", "attributes": {"status": 200}}, "status must be between 400"),
    ({"type": "http_error", "attributes": {"status": 42}}, "status must be between 400"),
    ({"type": "lost_ack", "attributes": {"after_bytes": -3}}, "after_bytes must be between 0"),
    ({"type": "latency", "attributes": {"latncy": 100}}, "unknown attribute 'latncy'"),
    ({"type": "latency", "toxicity": 1.5}, "toxicity must be a number between 0 and 1"),
    ({"type": "latency", "toxicity": -0.1}, "toxicity must be a number between 0 and 1"),
    ({"type": "latency", "scope": "request"}, 'scope must be "connection" or "exchange"'),
    ({"type": "slow_close", "scope": "exchange"}, "means nothing for slow_close"),
    ({"type": "latency", "name": "a/b"}, "must not contain '/'"),
    ({"type": "latency", "name": "x" * 201}, "longer than 200"),
    # where Toxiproxy rejects, its own message
    ({"type": "latency", "attributes": {"latency": "100"}},
     "bad request body: json: cannot unmarshal string into Go struct field "
     "latency.attributes.latency of type int64"),
    ({"type": "latency", "toxicity": "high"},
     "json: cannot unmarshal string into Go struct field ToxicWrapper.toxicity of type float32"),
]


@pytest.mark.parametrize(("body", "message"), INVALID)
def test_toxic_attributes_are_validated(server: ServedProxy, api: ProxyClient,
                                        echo_upstream: Upstream, body: dict[str, Any],
                                        message: str) -> None:
    api.create_proxy("val", upstream=echo_upstream.address)
    status, answer = call(server.port, "POST", "/proxies/val/toxics", body)
    assert status == 400, answer
    assert message in answer["error"]
    assert api.toxics("val") == []


def test_updates_are_validated_and_change_nothing(server: ServedProxy, api: ProxyClient,
                                                  echo_upstream: Upstream) -> None:
    api.create_proxy("valu", upstream=echo_upstream.address)
    toxic = api.add_toxic("valu", type="latency", attributes={"latency": 5})
    for body in ({"toxicity": 2}, {"attributes": {"latency": -1}}, {"scope": "sometimes"},
                 {"attributes": {"nope": 1}}):
        assert call(server.port, "PATCH", "/proxies/valu/toxics/latency_downstream", body)[0] == 400
    assert api.get_toxic("valu", "latency_downstream") == toxic


@pytest.mark.parametrize(("body", "message"), [
    ({"name": "p", "upstream": "127.0.0.1:0"}, "port 0 cannot be connected to"),
    ({"name": "p", "upstream": "127.0.0.1:http"}, "the port must be a number"),
    ({"name": "p", "upstream": "127.0.0.1:99999"}, "port out of range"),
    ({"name": "p/q", "upstream": "127.0.0.1:5"}, "must not contain '/'"),
])
def test_proxy_fields_are_validated(server: ServedProxy, api: ProxyClient,
                                    body: dict[str, Any], message: str) -> None:
    status, answer = call(server.port, "POST", "/proxies", body)
    assert status == 400
    assert message in answer["error"]


def test_seed_is_validated(server: ServedProxy) -> None:
    for body in ({"seed": "7"}, {"seed": 1.5}, {"seed": 2**70}, {"seed": True}, {},
                 {"seed": 1, "label": 5}, {"seed": 1, "lable": "x"}):
        status, answer = call(server.port, "POST", "/seed", body)
        assert status == 400, (body, answer)


# -- caps -------------------------------------------------------------------------------------
def test_proxies_and_toxics_are_capped(tmp_path: Path, echo_upstream: Upstream) -> None:
    served = serve(tmp_path, "--max-proxies", "2", "--max-toxics", "2")
    try:
        client = served.client()
        client.create_proxy("one", upstream=echo_upstream.address)
        client.create_proxy("two", upstream=echo_upstream.address)
        with pytest.raises(ProxyAPIError) as err:
            client.create_proxy("three", upstream=echo_upstream.address)
        assert err.value.status == 400
        assert "too many proxies" in err.value.message
        status, body = call(served.port, "POST", "/populate", [
            {"name": "one", "upstream": echo_upstream.address},
            {"name": "three", "upstream": echo_upstream.address}])
        assert status == 400
        assert "too many proxies" in body["error"]
        client.add_toxic("one", type="latency")
        client.add_toxic("one", type="latency", stream="upstream")
        with pytest.raises(ProxyAPIError) as err:
            client.add_toxic("one", type="slicer", attributes={"average_size": 10})
        assert "too many toxics" in err.value.message
    finally:
        stop(served)


# -- malformed HTTP -----------------------------------------------------------------------------
def raw_exchange(port: int, data: bytes, timeout: float = 10.0) -> tuple[int, dict[str, Any]]:
    """Send raw bytes; parse the one response (status, JSON body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        response = http.client.HTTPResponse(sock)
        response.begin()
        body = response.read()
    return response.status, json.loads(body)


@pytest.mark.parametrize(("data", "status", "message"), [
    (b"POST /proxies HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
     400, "chunk size"),
    (b"POST /proxies HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}XX0\r\n\r\n",
     400, "CRLF"),
    (b"GET /proxies HTTP/1.1\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n", 431, "too large"),
    (b"POST /proxies HTTP/1.1\r\nContent-Length: 9\r\n\r\n{not json", 400, "invalid JSON"),
    (b"POST /proxies HTTP/1.1\r\nContent-Length: 100000\r\n\r\n" + b"[" * 100_000, 400,
     "nested too deeply"),
    (b"POST /proxies HTTP/1.1\r\nContent-Length: 11\r\n\r\n{\"name\":NaN", 400, "NaN"),
    (b"POST /proxies HTTP/1.1\r\nContent-Length: -5\r\n\r\n", 400, "Content-Length"),
    (b"POST /proxies HTTP/1.1\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n{}",
     400, "ambiguous"),
    (b"HELLO\r\n\r\n", 400, "request line"),
    (b"GET /proxies HTTP/2.0\r\n\r\n", 505, "version"),
    (b"GET /proxies HTTP/1.1\r\nno colon here\r\n\r\n", 400, "header"),
    (b"POST /proxies HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n", 413, "too large"),
])
def test_malformed_http_gets_a_json_error(server: ServedProxy, data: bytes, status: int,
                                          message: str) -> None:
    got, body = raw_exchange(server.port, data)
    assert got == status
    assert body["status"] == status
    assert message in body["error"]
    assert "invalid literal" not in body["error"]
    assert "Traceback" not in body["error"]


def test_a_request_that_never_completes_is_answered_408(echo_upstream: Upstream,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from faultline.proxy import _http

    monkeypatch.setattr(_http, "REQUEST_TIMEOUT", 0.5)
    with faultline.proxy.ProxyServer(port=0) as srv:
        status, body = raw_exchange(srv.port, b"POST /proxies HTTP/1.1\r\nContent-Le",
                                    timeout=5)
        assert (status, body["status"]) == (408, 408)
        status, body = raw_exchange(srv.port, b"POST /proxies HTTP/1.1\r\n"
                                    b"Content-Length: 50\r\n\r\n{\"name\"", timeout=5)
        assert status == 408
