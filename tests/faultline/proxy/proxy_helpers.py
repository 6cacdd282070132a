"""Helpers for the fault proxy tests: a real server subprocess, real TCP upstreams."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from faultline.proxy.client import ProxyClient
from faultline.stack._embedded import free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[3]
SEED = 7

@dataclass
class ServedProxy:
    """A ``faultline proxy serve`` subprocess."""

    port: int
    proc: subprocess.Popen[bytes]
    events_file: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self) -> ProxyClient:
        return ProxyClient(self.url)


def serve(tmp: Path, *extra: str) -> ServedProxy:
    """Start ``python -m faultline proxy serve`` on a free port."""
    port = free_port()
    events = tmp / f"events-{port}.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "faultline", "proxy", "serve", "--port", str(port),
         "--events-file", str(events), *extra],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
    )
    try:
        wait_for_port(port, timeout=15)
    except Exception:
        proc.kill()
        raise
    return ServedProxy(port, proc, events)


def stop(served: ServedProxy) -> None:
    if served.proc.poll() is None:
        os.killpg(served.proc.pid, signal.SIGTERM)
        try:
            served.proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(served.proc.pid, signal.SIGKILL)
            served.proc.wait(5)


@dataclass
class Upstream:
    """A threaded TCP server on 127.0.0.1 that records what it receives."""

    handler: Callable[[socket.socket, Upstream], None]
    port: int = 0
    received: list[bytes] = field(default_factory=list)
    _sock: socket.socket | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> Upstream:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        self._sock = sock
        self.port = sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def _accept(self) -> None:
        assert self._sock is not None
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            self.handler(conn, self)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()


def echo(conn: socket.socket, up: Upstream) -> None:
    """Echo everything back."""
    while True:
        data = conn.recv(65536)
        if not data:
            return
        up.received.append(data)
        conn.sendall(data)


def listen_port(proxy: dict[str, object]) -> int:
    """The port of a proxy's ``listen``."""
    return int(str(proxy["listen"]).rsplit(":", 1)[1])


def connect(proxy: dict[str, object], timeout: float = 5.0) -> socket.socket:
    """A client connection through the proxy."""
    sock = socket.create_connection(("127.0.0.1", listen_port(proxy)), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def recv_exactly(sock: socket.socket, n: int) -> bytes:
    """Read exactly ``n`` bytes (fails on EOF)."""
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise EOFError(f"EOF after {len(data)} of {n} bytes")
        data += chunk
    return data


def recv_all(sock: socket.socket) -> bytes:
    """Read until EOF."""
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk


def read_to_end(sock: socket.socket) -> tuple[bytes, bool]:
    """Everything the peer sends, and whether the connection ended in a reset."""
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        return data, True
    return data, False


def turn(sock: socket.socket, payload: bytes) -> bytes:
    """One request/reply turn with an echo upstream: send, read the same length back."""
    sock.sendall(payload)
    return recv_exactly(sock, len(payload))


def pattern_seed(proxy: str, toxic: str, scope: str, pattern: list[bool],
                 toxicity: float = 0.5) -> int:
    """The first seed whose first decisions of ``toxic`` hit exactly as ``pattern`` says.

    Decisions are a pure function of (seed, proxy, toxic, scope, n), so a test can pick a
    seed that makes, say, the third exchange the one that is hit.
    """
    from faultline.proxy._seed import decision

    for seed in range(100_000):
        if all((decision(seed, proxy, toxic, scope, n) < toxicity) == hit
               for n, hit in enumerate(pattern)):
            return seed
    raise AssertionError("no seed found")


def fired(events: list[dict[str, object]], toxic: str) -> list[dict[str, object]]:
    """The ``toxic_fired`` events of one toxic."""
    return [e for e in events if e["event"] == "toxic_fired"
            and isinstance(e.get("toxic"), dict) and e["toxic"]["name"] == toxic]  # type: ignore[index]


def wait_idle(server: ServedProxy, proxy: str, timeout: float = 5.0) -> None:
    """Wait until ``proxy`` has no live connection (closes finish asynchronously)."""
    import re
    import time
    import urllib.request

    pattern = re.compile(rf'^faultline_proxy_connections\{{proxy="{re.escape(proxy)}"\}} (\d+)$',
                         re.MULTILINE)
    deadline = time.monotonic() + timeout
    while True:
        with urllib.request.urlopen(f"{server.url}/metrics", timeout=5) as response:
            found = pattern.search(response.read().decode())
        if found is None or found.group(1) == "0":
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{proxy} still has {found.group(1)} connections")
        time.sleep(0.02)
