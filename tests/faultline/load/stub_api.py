"""A stand-in for the payments api, for load tests that need no stack: answers every
operation of the locustfile and records when each request arrived (this machine's
monotonic clock, the master's clock in the distributed tests)."""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

MERCHANTS = [{"id": f"m{i}", "api_key": f"key-{i}", "accounts": [f"a{i}-{j}" for j in range(4)]}
             for i in range(2)]


class StubApi:
    """``with StubApi() as api: api.url``; ``api.arrivals[key]``: arrival times (ns).
    After ``hang_after`` requests, every transfer hangs for ``hang`` seconds (clients
    time out, retry, and are still busy when the load stops)."""

    def __init__(self, hang_after: int | None = None, hang: float = 10.0) -> None:
        self.arrivals: dict[str, list[int]] = defaultdict(list)
        self.requests = 0
        self.hung = 0
        self._closing = threading.Event()
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                arrived = time.monotonic_ns()
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                key = self.headers.get("Idempotency-Key") or ""
                api.arrivals[key].append(arrived)
                api.requests += 1
                if hang_after is not None and api.requests > hang_after:
                    api.hung += 1
                    api._closing.wait(hang)
                self._answer(201, {"id": key, "status": "posted"})

            def do_GET(self) -> None:
                api.requests += 1
                if self.path.endswith("/statement") or "/statement?" in self.path:
                    self._answer(200, {"entries": []})
                else:
                    self._answer(200, {"balance": 1000})

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> StubApi:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closing.set()
        self.server.shutdown()
        self.server.server_close()

    @staticmethod
    def write_stack(path: Path) -> Path:
        """The seed JSON the locustfile reads (contracts §4, the merchants only)."""
        path.write_text(json.dumps({"merchants": MERCHANTS}))
        return path


def _stub_launcher(*, target: str, run_dir: Path, bugs: list[str],
                   proxy_seed: int | None = None) -> Any:
    """The stub api is somebody else's: an external stack at ``FAULTLINE_BASE_URL``."""
    from faultline.stack import ExternalStack

    return ExternalStack(system="stub", workload_data={"merchants": MERCHANTS})


def _empty_snapshot(stack: Any, sink: Any) -> None:
    for table in ("accounts", "transfers", "entries"):
        sink.table(table, [])
    sink.meta("external_inflow", {})


def _stub_profile() -> Any:
    import dataclasses

    from faultline.system import load_profile

    payments = load_profile("payments")
    # the payments workload (the stub answers its requests), nothing of its stack
    return dataclasses.replace(
        payments, name="stub", description="the stub api of the load tests", hops=(),
        services=(), invariants=("conservation",), launchers={"external": _stub_launcher},
        snapshot=_empty_snapshot, settle_status=lambda stack: [], bugs={}, actions={},
        alert_rules=None)


STUB_PROFILE = _stub_profile()
