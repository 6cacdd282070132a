"""Fixtures for the fault proxy tests: a real server subprocess and real TCP upstreams."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator

import pytest
from proxy_helpers import SEED, ServedProxy, Upstream, echo, serve, stop

from faultline.proxy.client import ProxyClient


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedProxy]:
    """One seeded proxy server per test module."""
    served = serve(tmp_path_factory.mktemp("proxy"), "--seed", str(SEED))
    try:
        yield served
    finally:
        stop(served)


@pytest.fixture
def api(server: ServedProxy) -> Iterator[ProxyClient]:
    """A client of the module's server; every proxy is deleted after the test."""
    client = server.client()
    yield client
    for name in list(client.proxies()):
        client.delete_proxy(name)


@pytest.fixture
def echo_upstream() -> Iterator[Upstream]:
    """An echo server."""
    up = Upstream(echo).start()
    yield up
    up.close()


@pytest.fixture
def make_upstream() -> Iterator[Callable[[Callable[[socket.socket, Upstream], None]], Upstream]]:
    """Build upstreams with a custom handler."""
    made: list[Upstream] = []

    def make(handler: Callable[[socket.socket, Upstream], None]) -> Upstream:
        up = Upstream(handler).start()
        made.append(up)
        return up

    yield make
    for up in made:
        up.close()
