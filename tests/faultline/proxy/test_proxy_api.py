"""API conformance: Toxiproxy's endpoints, JSON shapes and status codes.

Driven through raw HTTP (every status code), through the ``toxiproxy-python`` client
unchanged, through our own :class:`ProxyClient` and through the CLI.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import time
from pathlib import Path
from typing import Any

import pytest
from proxy_helpers import (
    SEED,
    ServedProxy,
    Upstream,
    connect,
    listen_port,
    recv_exactly,
    serve,
    stop,
)

import faultline.proxy
from faultline.cli import main as cli_main
from faultline.proxy.client import ProxyAPIError, ProxyClient
from faultline.stack._embedded import free_port


def call(server: ServedProxy, method: str, path: str, body: Any = None,
         raw: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    """One raw HTTP request; returns (status, parsed JSON or text)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    conn.request(method, path, body=data, headers=headers or {})
    resp = conn.getresponse()
    text = resp.read().decode()
    conn.close()
    try:
        return resp.status, json.loads(text)
    except ValueError:
        return resp.status, text


def new_proxy(server: ServedProxy, name: str, upstream: Upstream, **extra: Any) -> dict[str, Any]:
    status, body = call(server, "POST", "/proxies",
                        {"name": name, "listen": "127.0.0.1:0", "upstream": upstream.address,
                         **extra})
    assert status == 201, body
    return dict(body)


# -- raw HTTP: every status code ----------------------------------------------------------
def test_create_proxy_201_shape_and_real_port(server: ServedProxy, api: ProxyClient,
                                              echo_upstream: Upstream) -> None:
    proxy = new_proxy(server, "shop", echo_upstream)
    assert list(proxy) == ["name", "listen", "upstream", "enabled", "toxics"]
    assert proxy["enabled"] is True
    assert proxy["toxics"] == []
    assert proxy["listen"].startswith("127.0.0.1:")
    assert listen_port(proxy) != 0
    with connect(proxy) as sock:  # the reported port is the real one
        sock.sendall(b"ping")
        assert recv_exactly(sock, 4) == b"ping"
    status, index = call(server, "GET", "/proxies")
    assert status == 200
    assert index["shop"] == proxy
    assert call(server, "GET", "/proxies/shop") == (200, proxy)


def test_proxy_errors(server: ServedProxy, api: ProxyClient, echo_upstream: Upstream) -> None:
    new_proxy(server, "dup", echo_upstream)
    status, body = call(server, "POST", "/proxies", {"name": "dup", "upstream": echo_upstream.address})
    assert (status, body) == (409, {"error": "proxy already exists", "status": 409})
    status, body = call(server, "POST", "/proxies", {"upstream": echo_upstream.address})
    assert (status, body) == (400, {"error": "missing required field: name", "status": 400})
    status, body = call(server, "POST", "/proxies", {"name": "x"})
    assert (status, body) == (400, {"error": "missing required field: upstream", "status": 400})
    status, body = call(server, "POST", "/proxies", raw=b"{not json")
    assert status == 400
    assert body["error"].startswith("bad request body")
    status, body = call(server, "POST", "/proxies", {"name": 5, "upstream": echo_upstream.address})
    assert status == 400
    assert body["status"] == 400
    assert call(server, "GET", "/proxies/nope") == (
        404, {"error": "proxy not found", "status": 404})
    assert call(server, "DELETE", "/proxies/nope")[0] == 404
    assert call(server, "POST", "/proxies/nope", {"enabled": False})[0] == 404


def test_listen_address_in_use_is_an_error(server: ServedProxy, api: ProxyClient,
                                            echo_upstream: Upstream) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    port = taken.getsockname()[1]
    try:
        status, body = call(server, "POST", "/proxies", {
            "name": "clash", "listen": f"127.0.0.1:{port}", "upstream": echo_upstream.address})
        assert status == 500
        assert body == {"error": f"listen tcp 127.0.0.1:{port}: bind: address already in use",
                        "status": 500}
        assert "clash" not in api.proxies()
    finally:
        taken.close()


def test_toxic_crud_status_codes_and_defaults(server: ServedProxy, api: ProxyClient,
                                              echo_upstream: Upstream) -> None:
    new_proxy(server, "tox", echo_upstream)
    status, toxic = call(server, "POST", "/proxies/tox/toxics",
                         {"type": "latency", "attributes": {"latency": 10}})
    assert status == 200
    assert toxic == {"attributes": {"latency": 10, "jitter": 0}, "name": "latency_downstream",
                     "type": "latency", "stream": "downstream", "toxicity": 1.0}
    status, body = call(server, "POST", "/proxies/tox/toxics", {"type": "latency"})
    assert (status, body) == (409, {"error": "toxic already exists", "status": 409})
    status, body = call(server, "POST", "/proxies/tox/toxics", {"type": "nope"})
    assert (status, body) == (400, {"error": "invalid toxic type", "status": 400})
    status, body = call(server, "POST", "/proxies/tox/toxics", {"type": "latency", "stream": "sideways"})
    assert (status, body) == (400, {
        "error": "stream was invalid, can be either upstream or downstream", "status": 400})
    status, body = call(server, "POST", "/proxies/tox/toxics",
                        {"type": "bandwidth", "attributes": {"rate": "fast"}})
    assert status == 400
    assert body["error"].startswith("bad request body")
    status, body = call(server, "POST", "/proxies/tox/toxics",
                        {"type": "timeout", "attributes": {"timeout": 1.5}})
    assert status == 400
    # Toxiproxy drops unknown attributes silently; Faultline names them (docs/proxy.md)
    status, body = call(server, "POST", "/proxies/tox/toxics",
                        {"type": "slicer", "name": "s", "stream": "upstream", "toxicity": 0.5,
                         "attributes": {"average_size": 8, "size_variation": 2, "bogus": 1}})
    assert status == 400
    assert "bogus" in body["error"]
    status, body = call(server, "POST", "/proxies/tox/toxics",
                        {"type": "slicer", "name": "s", "stream": "upstream", "toxicity": 0.5,
                         "attributes": {"average_size": 8, "size_variation": 2}})
    assert status == 200
    assert body["attributes"] == {
        "average_size": 8, "size_variation": 2, "delay": 0}
    assert body["toxicity"] == 0.5
    assert body["stream"] == "upstream"
    # update merges attributes and toxicity; PATCH and POST both work
    status, body = call(server, "PATCH", "/proxies/tox/toxics/latency_downstream",
                        {"attributes": {"jitter": 3}})
    assert status == 200
    assert body["attributes"] == {"latency": 10, "jitter": 3}
    status, body = call(server, "POST", "/proxies/tox/toxics/latency_downstream",
                        {"toxicity": 0.25})
    assert status == 200
    assert body["toxicity"] == 0.25
    assert body["attributes"]["jitter"] == 3
    status, body = call(server, "PATCH", "/proxies/tox/toxics/latency_downstream",
                        {"attributes": {"latency": "x"}})
    assert status == 400
    # listing: upstream toxics first, then downstream (Toxiproxy's order)
    status, toxics = call(server, "GET", "/proxies/tox/toxics")
    assert status == 200
    assert [t["name"] for t in toxics] == ["s", "latency_downstream"]
    assert call(server, "GET", "/proxies/tox/toxics/s")[0] == 200
    assert call(server, "GET", "/proxies/tox/toxics/nope") == (
        404, {"error": "toxic not found", "status": 404})
    assert call(server, "PATCH", "/proxies/tox/toxics/nope", {"toxicity": 1})[0] == 404
    assert call(server, "DELETE", "/proxies/tox/toxics/nope")[0] == 404
    assert call(server, "POST", "/proxies/nope/toxics", {"type": "latency"}) == (
        404, {"error": "proxy not found", "status": 404})
    assert call(server, "GET", "/proxies/nope/toxics")[0] == 404
    assert call(server, "DELETE", "/proxies/tox/toxics/s") == (204, "")
    assert call(server, "DELETE", "/proxies/tox") == (204, "")
    assert call(server, "GET", "/proxies/tox")[0] == 404


def test_misc_routes(server: ServedProxy) -> None:
    status, body = call(server, "GET", "/version")
    assert status == 200
    assert body["version"].startswith("2.")
    status, text = call(server, "GET", "/metrics")
    assert status == 200
    assert "toxiproxy_proxy_received_bytes_total" in text
    assert call(server, "GET", "/nowhere")[0] == 404
    assert call(server, "PUT", "/proxies")[0] == 405
    assert call(server, "GET", "/proxies", headers={"User-Agent": "Mozilla/5.0"})[0] == 403


def test_disable_closes_listener_and_connections_and_reset_reenables(
    server: ServedProxy, api: ProxyClient, echo_upstream: Upstream
) -> None:
    proxy = new_proxy(server, "toggle", echo_upstream)
    live = connect(proxy)
    live.sendall(b"x")
    assert recv_exactly(live, 1) == b"x"
    call(server, "POST", "/proxies/toggle/toxics", {"type": "latency", "attributes": {"latency": 1}})
    status, body = call(server, "POST", "/proxies/toggle", {"enabled": False})
    assert status == 200
    assert body["enabled"] is False
    live.settimeout(2)
    with contextlib.suppress(ConnectionResetError):
        assert live.recv(10) == b""
    live.close()
    with pytest.raises(ConnectionRefusedError):
        connect(proxy)
    assert call(server, "POST", "/reset") == (204, "")
    status, body = call(server, "GET", "/proxies/toggle")
    assert body["enabled"] is True
    assert body["toxics"] == []
    with connect(body) as sock:
        sock.sendall(b"y")
        assert recv_exactly(sock, 1) == b"y"


def test_populate_validates_everything_before_creating(
    server: ServedProxy, api: ProxyClient, echo_upstream: Upstream
) -> None:
    good = {"name": "p1", "listen": "127.0.0.1:0", "upstream": echo_upstream.address}
    status, body = call(server, "POST", "/populate", [good, {"name": "p2"}])
    assert status == 400
    assert body["error"] == "missing required field: upstream at proxy 2"
    assert body["proxies"] is None
    assert api.proxies() == {}
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    try:
        clash = {"name": "p2", "listen": f"127.0.0.1:{taken.getsockname()[1]}",
                 "upstream": echo_upstream.address}
        status, body = call(server, "POST", "/populate", [good, clash])
        assert status == 500
        assert "address already in use" in body["error"]
        assert api.proxies() == {}
    finally:
        taken.close()
    status, body = call(server, "POST", "/populate", [good, {**good, "name": "p2"}])
    assert status == 201
    assert [p["name"] for p in body["proxies"]] == ["p1", "p2"]
    first = api.proxies()
    # the same list again keeps the proxies (and their ports)
    status, body = call(server, "POST", "/populate", [good, {**good, "name": "p2"}])
    assert status == 201
    assert api.proxies() == first


def test_events_are_recorded_with_both_clocks(server: ServedProxy, api: ProxyClient,
                                              echo_upstream: Upstream) -> None:
    _, since = api.events()
    before = time.monotonic()
    new_proxy(server, "ev", echo_upstream)
    api.add_toxic("ev", type="timeout", attributes={"timeout": 0})
    api.update_toxic("ev", "timeout_downstream", attributes={"timeout": 5})
    api.remove_toxic("ev", "timeout_downstream")
    api.disable_proxy("ev")
    events, nxt = api.events(since)
    kinds = [e["event"] for e in events]
    assert kinds == ["proxy_created", "proxy_enabled", "toxic_added", "toxic_updated",
                     "toxic_removed", "proxy_disabled"]
    assert nxt == since + len(events)
    assert all(before <= e["mono"] <= time.monotonic() for e in events)
    assert events[2]["proxy"] == "ev"
    assert events[2]["toxic"]["type"] == "timeout"
    assert events[3]["toxic"]["attributes"]["timeout"] == 5
    time.sleep(0.05)
    lines = [json.loads(line) for line in server.events_file.read_text().splitlines()]
    assert [e["event"] for e in lines if e["seq"] >= since] == kinds


# -- toxiproxy-python, unchanged ------------------------------------------------------------
def test_toxiproxy_python_client(server: ServedProxy, api: ProxyClient,
                                 echo_upstream: Upstream) -> None:
    toxiproxy = pytest.importorskip("toxiproxy")
    from toxiproxy.api import APIConsumer
    from toxiproxy.exceptions import InvalidToxic, NotFound, ProxyExists

    tp = toxiproxy.Toxiproxy()
    tp.update_api_consumer("127.0.0.1", server.port)
    try:
        assert tp.running()
        assert b"2." in tp.version()
        proxy = tp.create(upstream=echo_upstream.address, name="py", listen="127.0.0.1:0")
        assert proxy.enabled is True
        assert proxy.listen != "127.0.0.1:0"
        with pytest.raises(ProxyExists):
            tp.create(upstream=echo_upstream.address, name="py")
        assert set(tp.proxies()) == {"py"}
        proxy.add_toxic(type="latency", attributes={"latency": 5})
        proxy.add_toxic(type="bandwidth", stream="upstream", name="bw", toxicity=0.5,
                        attributes={"rate": 100})
        toxics = proxy.toxics()
        assert set(toxics) == {"latency_downstream", "bw"}
        assert toxics["bw"].attributes == {"rate": 100}
        assert toxics["bw"].toxicity == 0.5
        with pytest.raises(ProxyExists):
            proxy.add_toxic(type="latency")
        with pytest.raises(InvalidToxic):
            proxy.add_toxic(type="nope", name="n")
        assert proxy.destroy_toxic("bw") is True
        with pytest.raises(NotFound):
            proxy.destroy_toxic("bw")
        proxy.disable()
        assert tp.get_proxy("py").enabled is False
        proxy.enable()
        assert tp.get_proxy("py").enabled is True
        with proxy.down():
            assert tp.get_proxy("py").enabled is False
        assert tp.reset() is True
        assert tp.get_proxy("py").toxics() == {}
        created = tp.populate([{"name": "py2", "upstream": echo_upstream.address,
                                "listen": "127.0.0.1:0"}])
        assert [p.name for p in created] == ["py2"]
        tp.destroy_all()
        assert tp.proxies() == {}
    finally:
        APIConsumer.port = 8474  # the client keeps class state


# -- our client -------------------------------------------------------------------------------
def test_proxy_client(server: ServedProxy, api: ProxyClient, echo_upstream: Upstream,
                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOXIPROXY_URL", server.url)
    client = ProxyClient()
    assert client.url == server.url
    assert client.version().startswith("2.")
    p = client.create_proxy("c1", upstream=echo_upstream.address)
    assert client.get_proxy("c1") == p
    assert set(client.proxies()) == {"c1"}
    toxic = client.add_toxic("c1", type="limit_data", attributes={"bytes": 10})
    assert toxic["name"] == "limit_data_downstream"
    assert client.toxics("c1") == [toxic]
    assert client.update_toxic("c1", toxic["name"], toxicity=0.5)["toxicity"] == 0.5
    client.remove_toxic("c1", toxic["name"])
    with pytest.raises(ProxyAPIError) as err:
        client.get_proxy("nope")
    assert err.value.status == 404
    assert err.value.message == "proxy not found"
    assert client.update_proxy("c1", enabled=False)["enabled"] is False
    client.reset()
    assert client.get_proxy("c1")["enabled"] is True
    assert [x["name"] for x in client.populate([{"name": "c2", "upstream": "127.0.0.1:1"}])] == ["c2"]
    client.delete_proxy("c1")
    with pytest.raises(ProxyAPIError) as err:
        ProxyClient(f"http://127.0.0.1:{free_port()}", timeout=1).proxies()
    assert err.value.status == 0


def test_public_surface() -> None:
    public = {n for n in dir(faultline.proxy) if not n.startswith(("_", "@"))}
    modules = {"client"}
    assert set(faultline.proxy.__all__) == public - modules
    assert {"latency", "bandwidth", "slow_close", "timeout", "reset_peer", "slicer",
            "limit_data", "lost_ack", "connect_delay", "http_error", "half_close",
            "stall"} == set(
                faultline.proxy.TOXIC_TYPES)


# -- CLI ----------------------------------------------------------------------------------------
def test_cli_commands(server: ServedProxy, api: ProxyClient, echo_upstream: Upstream,
                      capsys: pytest.CaptureFixture[str]) -> None:
    url = ["--url", server.url]
    assert cli_main(["proxy", "create", "cli1", "-u", echo_upstream.address, *url]) == 0
    assert "created proxy cli1 listening on 127.0.0.1:" in capsys.readouterr().out
    assert cli_main(["proxy", "toxic", "add", "cli1", "-t", "latency", "-a", "latency=7",
                     "--tox", "0.5", *url]) == 0
    assert api.get_toxic("cli1", "latency_downstream")["attributes"]["latency"] == 7
    assert cli_main(["proxy", "toxic", "update", "cli1", "-n", "latency_downstream",
                     "-a", "jitter=2", *url]) == 0
    assert api.get_toxic("cli1", "latency_downstream")["attributes"] == {"latency": 7, "jitter": 2}
    assert cli_main(["proxy", "list", *url]) == 0
    assert "cli1" in capsys.readouterr().out
    assert cli_main(["proxy", "inspect", "cli1", *url]) == 0
    assert "latency_downstream" in capsys.readouterr().out
    assert cli_main(["proxy", "toggle", "cli1", *url]) == 0
    assert api.get_proxy("cli1")["enabled"] is False
    assert cli_main(["proxy", "reset", *url]) == 0
    assert api.get_proxy("cli1") ["enabled"] is True
    capsys.readouterr()
    assert cli_main(["proxy", "toxic", "add", "cli1", "-t", "nope", *url]) == 1
    err = capsys.readouterr().err
    assert "400: invalid toxic type" in err
    assert "Traceback" not in err
    assert cli_main(["proxy", "toxic", "remove", "cli1", "-n", "nope", *url]) == 1
    assert cli_main(["proxy", "delete", "cli1", *url]) == 0
    assert cli_main(["proxy", "delete", "cli1", *url]) == 1
    assert "proxy not found" in capsys.readouterr().err


def test_serve_loads_toxiproxy_json(tmp_path: Path, echo_upstream: Upstream) -> None:
    port = free_port()
    config = tmp_path / "toxiproxy.json"
    config.write_text(json.dumps([
        {"name": "from_file", "listen": f"127.0.0.1:{port}", "upstream": echo_upstream.address,
         "enabled": True},
        {"name": "off", "listen": "127.0.0.1:0", "upstream": echo_upstream.address,
         "enabled": False,
         "toxics": [{"type": "latency", "attributes": {"latency": 3}}]},
    ]))
    served = serve(tmp_path, "--config", str(config), "--seed", str(SEED))
    try:
        proxies = served.client().proxies()
        assert proxies["from_file"]["listen"] == f"127.0.0.1:{port}"
        assert proxies["off"]["enabled"] is False
        assert proxies["off"]["toxics"][0]["name"] == "latency_downstream"
        with connect(proxies["from_file"]) as sock:
            sock.sendall(b"cfg")
            assert recv_exactly(sock, 3) == b"cfg"
    finally:
        stop(served)


def test_in_process_server_in_a_thread(echo_upstream: Upstream) -> None:
    with faultline.proxy.ProxyServer(port=0, seed=3) as srv:
        assert srv.port != 0
        client = ProxyClient(srv.url)
        proxy = client.create_proxy("inproc", upstream=echo_upstream.address)
        with connect(proxy) as sock:
            sock.sendall(b"in-process")
            assert recv_exactly(sock, 10) == b"in-process"
        url = srv.url
    with pytest.raises(ProxyAPIError):
        ProxyClient(url, timeout=1).proxies()


def test_update_moves_listener_and_upstream(server: ServedProxy, api: ProxyClient,
                                            echo_upstream: Upstream) -> None:
    proxy = new_proxy(server, "mv", echo_upstream)
    port = free_port()
    status, body = call(server, "PATCH", "/proxies/mv", {"listen": f"127.0.0.1:{port}"})
    assert status == 200
    assert body["listen"] == f"127.0.0.1:{port}"
    assert body["enabled"] is True
    with pytest.raises(ConnectionRefusedError):
        connect(proxy)
    with connect(body) as sock:
        sock.sendall(b"moved")
        assert recv_exactly(sock, 5) == b"moved"
    status, body = call(server, "PATCH", "/proxies/mv", {"upstream": "no-port"})
    assert status == 400
