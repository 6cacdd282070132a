"""schemathesis against the real api: every operation of the OpenAPI document fuzzed with
valid and invalid data (every check), authenticated as a merchant, zero failures.

Bounded (a fixed seed, at most MAX_EXAMPLES per operation and phase) to stay well under a
minute on a 2-core machine. The admin operations answer 401 here (a merchant key is not
the admin key, and a TOTP code is good once: no fuzzer can hold one); they are still
fuzzed for authentication, methods and error shapes.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from payments_stack import Stack, ledger_problems, new_stack

from faultline.stack._embedded import EmbeddedPostgres, EmbeddedRedis

pytestmark = pytest.mark.stack

MAX_EXAMPLES = 100  # per operation and phase: ~1,600 requests, ~25 s here
SEED = 20261130
CONFIG = Path(__file__).with_name("schemathesis.toml")


@pytest.fixture(scope="module")
def stack(postgres_server: EmbeddedPostgres, module_redis: EmbeddedRedis) -> Iterator[Stack]:
    s = new_stack(postgres_server, module_redis.url, "fuzz")
    try:
        s.run_seed("--merchants", "2", "--accounts", "3", "--balance", "100000")
        s.start("api")
        yield s
    finally:
        s.stop_all()


def test_schemathesis_finds_no_failure(stack: Stack, tmp_path: Path) -> None:
    """Every check, every phase (examples, coverage, fuzzing, stateful via the document's
    links), valid and invalid data: zero failures, no 5xx, and a consistent ledger."""
    key = stack.seed["merchants"][0]["api_key"]
    api = stack.services["api"].url
    cli = Path(sys.executable).with_name("schemathesis")
    har = tmp_path / "requests.har"
    started = time.monotonic()
    # One worker: hypothesis's lambda descriptions call ast.parse, which is not
    # thread-safe on Python 3.11 (SystemError "AST constructor recursion depth mismatch").
    run = subprocess.run(
        [str(cli), "--config-file", str(CONFIG), "run", f"{api}/openapi.json", "--url", api,
         "--checks", "all", "--header", f"Authorization: Bearer {key}",
         "--max-examples", str(MAX_EXAMPLES), "--seed", str(SEED), "--workers", "1",
         "--no-shrink", "--request-timeout", "10", "--report", "har",
         "--report-har-path", str(har)],
        cwd=tmp_path, capture_output=True, text=True, timeout=240)
    took = time.monotonic() - started
    entries = orjson.loads(har.read_bytes())["log"]["entries"] if har.exists() else []
    statuses = Counter(e["response"]["status"] for e in entries)
    print(f"\nschemathesis: {len(entries)} requests in {took:.0f}s, exit {run.returncode}, "
          f"statuses {sorted(statuses.items())}")
    assert run.returncode == 0, run.stdout[-8000:] + run.stderr[-2000:]
    assert len(entries) > 1000
    assert not [s for s in statuses if s >= 500], statuses
    assert "unhandled error" not in stack.services["api"].log.read_text()
    assert ledger_problems(stack.snapshot()) == []
