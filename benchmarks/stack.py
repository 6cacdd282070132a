"""Transfers per second and latency through the payments api, beside the ceiling: the same
ledger work issued directly to PostgreSQL from one asyncpg pool, in one run.

    .venv/bin/python benchmarks/stack.py [--concurrency 4] [--seconds 12] [--rounds 4]

Starts its own PostgreSQL, Redis, risk service and api (one uvicorn process) on loopback.
The relay and workers are not running during the measurement: they are asynchronous and
off the request path, and on a small machine they would only take CPU from both columns.

Rows:
- ``api``: POST /v1/transfers over keep-alive HTTP/1.1 (auth, validation, idempotency
  claim, risk call through its resilience pipeline, ledger transaction, response).
- ``direct (api's db work)``: exactly the SQL the api runs per transfer - the idempotency
  claim and the ledger transaction (lock both accounts, transfer + entries + balances +
  outbox + idempotency completion + audit append, commit) - from one asyncpg pool.
  This is the ceiling the target is measured against (api >= 40% of it).
- ``direct (ledger tx only)``: the ledger transaction without the idempotency claim.
Results are printed and written to benchmarks/results/stack.json.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import orjson  # noqa: E402

from faultline.stack._embedded import (  # noqa: E402
    EmbeddedPostgres,
    EmbeddedRedis,
    free_port,
    wait_for_port,
)
from payments import _idempotency as idem  # noqa: E402
from payments import ledger  # noqa: E402
from payments._db import create_pool  # noqa: E402

RESULTS = REPO / "benchmarks" / "results" / "stack.json"


class HttpConnection:
    """A minimal keep-alive HTTP/1.1 client connection: the load generator must be cheaper
    than the server it measures (httpx costs more CPU per request than the api itself)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.writer.write(
            f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n{head}\r\n".encode() + body)
        raw = await self.reader.readuntil(b"\r\n\r\n")
        status = int(raw[9:12])
        length = 0
        for line in raw.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        return status, await self.reader.readexactly(length)


def pct(sorted_ms: list[float], q: float) -> float:
    if not sorted_ms:
        return float("nan")
    return sorted_ms[min(len(sorted_ms) - 1, int(q * len(sorted_ms)))]


async def drive(name: str, one: Any, concurrency: int, seconds: float,
                warmup: float = 0.5) -> dict[str, Any]:
    """Run ``one(worker_index)`` in ``concurrency`` loops; measure after a warmup."""
    latencies: list[float] = []
    errors = 0
    start = time.perf_counter()
    measure_from, stop_at = start + warmup, start + warmup + seconds

    async def loop(i: int) -> None:
        nonlocal errors
        while True:
            t0 = time.perf_counter()
            if t0 >= stop_at:
                return
            ok = await one(i)
            t1 = time.perf_counter()
            if t0 >= measure_from:
                if ok:
                    latencies.append((t1 - t0) * 1000)
                else:
                    errors += 1

    await asyncio.gather(*[loop(i) for i in range(concurrency)])
    return {"name": name, "concurrency": concurrency, "seconds": seconds,
            "latencies": latencies, "errors": errors}


def summarize(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Merge the rounds of one row."""
    lat = sorted(x for p in parts for x in p["latencies"])
    seconds = sum(p["seconds"] for p in parts)
    return {"name": parts[0]["name"], "concurrency": parts[0]["concurrency"],
            "seconds": seconds, "rounds": len(parts), "transfers": len(lat),
            "errors": sum(p["errors"] for p in parts), "tps": round(len(lat) / seconds, 1),
            "p50_ms": round(pct(lat, 0.50), 2), "p99_ms": round(pct(lat, 0.99), 2),
            "mean_ms": round(statistics.fmean(lat), 2) if lat else None}


async def bench_direct(url: str, merchant: dict[str, Any], concurrency: int, seconds: float,
                       with_claim: bool) -> dict[str, Any]:
    # The api's own pool factory (same session handling), sized to the concurrency.
    pool = await create_pool(url, min_size=concurrency, max_size=concurrency)
    accounts, mid = merchant["accounts"], merchant["id"]
    rng = random.Random(1)

    async def one(_i: int) -> bool:
        src, dst = rng.sample(accounts, 2)
        req = {"from_account": src, "to_account": dst, "amount": 1, "currency": "EUR"}
        key = os.urandom(9).hex()
        async with pool.acquire() as conn:
            completion = None
            if with_claim:
                got = await idem.claim(conn, mid, key, idem.request_hash(req), lease_s=30,
                                       ttl_s=86400)
                assert isinstance(got, idem.Claim)
            t = ledger.Transfer.new(merchant_id=mid, idempotency_key=key, **req)
            if with_claim:
                completion = ledger.IdempotencyCompletion(
                    key, got.token, 201, orjson.dumps(ledger.transfer_body(t)).decode())
            async with conn.transaction():
                await ledger.post_transfer(conn, t, completion=completion)
        return True

    try:
        name = "direct (api's db work)" if with_claim else "direct (ledger tx only)"
        return await drive(name, one, concurrency, seconds)
    finally:
        await pool.close()


async def bench_api(port: int, merchant: dict[str, Any], concurrency: int,
                    seconds: float) -> dict[str, Any]:
    conns = [HttpConnection("127.0.0.1", port) for _ in range(concurrency)]
    accounts = merchant["accounts"]
    auth = f"Bearer {merchant['api_key']}"
    rng = random.Random(2)

    async def one(i: int) -> bool:
        src, dst = rng.sample(accounts, 2)
        body = orjson.dumps({"from_account": src, "to_account": dst, "amount": 1,
                             "currency": "EUR"})
        status, _ = await conns[i].post("/v1/transfers", body, {
            "Authorization": auth, "Idempotency-Key": os.urandom(9).hex()})
        return status == 201

    return await drive("api", one, concurrency, seconds)


def start(module: str, env: dict[str, str], port: int, log_dir: Path) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, "-m", f"payments.{module}"], cwd=REPO,
                            env={**env, "PAYMENTS_PORT": str(port)},
                            stdout=open(log_dir / f"{module}.log", "wb"),  # noqa: SIM115
                            stderr=subprocess.STDOUT)
    wait_for_port(port, timeout=20)
    return proc


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=12.0, help="measured, per row")
    parser.add_argument("--rounds", type=int, default=4, help="alternating rounds per row")
    parser.add_argument("--accounts", type=int, default=200)
    parser.add_argument("--no-risk", action="store_true",
                        help="run the api without the risk service (isolates its cost)")
    args = parser.parse_args()

    pg, rd = EmbeddedPostgres().start(), EmbeddedRedis().start()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PAYMENTS_")}
        env.update({"PAYMENTS_DATABASE_URL": pg.url, "PAYMENTS_REDIS_URL": rd.url,
                    "PAYMENTS_ENCRYPTION_KEY": base64.b64encode(os.urandom(32)).decode(),
                    "PAYMENTS_DB_POOL_SIZE": str(args.concurrency)})
        subprocess.run([sys.executable, "-m", "payments.migrate"], cwd=REPO, env=env,
                       check=True, capture_output=True)
        seeded = orjson.loads(subprocess.run(
            [sys.executable, "-m", "payments.seed", "--merchants", "1", "--accounts",
             str(args.accounts), "--balance", "1000000000"], cwd=REPO, env=env, check=True,
            capture_output=True).stdout)
        merchant = seeded["merchants"][0]
        assert pg.base_dir is not None
        risk_port, api_port = free_port(), free_port()
        procs.append(start("risk", env, risk_port, pg.base_dir))
        risk_env = {} if args.no_risk else {"PAYMENTS_RISK_URL": f"http://127.0.0.1:{risk_port}"}
        procs.append(start("api", {**env, **risk_env}, api_port, pg.base_dir))
        loop = asyncio.new_event_loop()
        try:
            import uvloop

            loop = uvloop.new_event_loop()
        except ImportError:
            pass
        # Rows alternate in short rounds, so a noisy neighbour on the machine hits all of
        # them alike instead of whichever row happened to run at the time.
        slice_s = args.seconds / args.rounds
        parts: list[list[dict[str, Any]]] = [[], [], []]
        for _ in range(args.rounds):
            parts[0].append(loop.run_until_complete(
                bench_api(api_port, merchant, args.concurrency, slice_s)))
            parts[1].append(loop.run_until_complete(
                bench_direct(pg.url, merchant, args.concurrency, slice_s, with_claim=True)))
            parts[2].append(loop.run_until_complete(
                bench_direct(pg.url, merchant, args.concurrency, slice_s, with_claim=False)))
        loop.close()
        rows = [summarize(p) for p in parts]
    finally:
        for p in procs:
            p.terminate()
            p.wait(timeout=10)
        rd.cleanup()
        pg.cleanup()

    api, ceiling, tx_only = rows
    ratio = api["tps"] / ceiling["tps"] if ceiling["tps"] else 0.0
    verdict = {"api_vs_direct": round(ratio, 3),
               "api_vs_tx_only": round(api["tps"] / tx_only["tps"], 3) if tx_only["tps"] else 0,
               "target_ratio": 0.40, "target_p99_ms": 50.0,
               "ratio_met": ratio >= 0.40, "p99_met": api["p99_ms"] < 50.0}
    print(f"\nconcurrency {args.concurrency}, {args.seconds:.0f}s per row in {args.rounds} "
          "alternating rounds, "
          f"{os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"load average {os.getloadavg()[0]:.1f}\n")
    print(f"{'row':<26}{'transfers/s':>12}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}")
    for r in rows:
        print(f"{r['name']:<26}{r['tps']:>12.1f}{r['p50_ms']:>9.2f}{r['p99_ms']:>9.2f}"
              f"{r['errors']:>8}")
    print(f"\napi / direct = {ratio:.0%} (target >= 40%: {'met' if verdict['ratio_met'] else 'MISSED'}),"
          f" api p99 {api['p99_ms']:.1f} ms (target < 50 ms: "
          f"{'met' if verdict['p99_met'] else 'MISSED'}); api / tx-only = "
          f"{verdict['api_vs_tx_only']:.0%}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({
        "benchmark": "stack", "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform(),
                    "loadavg_1m_at_end": round(os.getloadavg()[0], 2)},
        "concurrency": args.concurrency, "rounds": args.rounds,
        "risk_service": not args.no_risk, "seconds": args.seconds, "accounts": args.accounts,
        "rows": rows, "verdict": verdict}, indent=2) + "\n")
    print(f"wrote {RESULTS.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
