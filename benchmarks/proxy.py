"""Throughput and added latency: direct vs ``faultline proxy`` vs Toxiproxy (if on PATH).

The same load for each target, in one run: ``redis-benchmark`` with 50 connections
(GET/SET request/reply) against a throwaway ``redis-server``, directly and through
each proxy. Rounds are interleaved so that the machine's background load hits every
target alike; the median round counts. Added latency is measured with one connection
doing PING/PONG round trips (p50 through the proxy minus p50 direct).

Three paths of ``faultline proxy`` are measured: ``faultline`` (no toxic: the hot path,
bytes written straight from the protocol callback), ``faultline+lat0`` (a ``latency``
toxic of 0 ms on both directions: every chunk goes through the toxic path, queue,
pump and toxic code, without any sleep), so the toxic machinery's own cost shows, and
``faultline+lat1`` (1 ms each way: every chunk is delayed, counted and slept on; its
throughput is bounded by the latency, its CPU per request is the number to compare). ``--baseline-src DIR`` also starts the ``faultline`` package found in
``DIR`` (e.g. ``git archive <commit> faultline | tar -x -C DIR``) and measures it the
same way, in the same interleaved rounds: a side-by-side before/after on one machine.

    .venv/bin/python benchmarks/proxy.py [--requests 50000] [--rounds 5] [--baseline-src DIR]

Prints a table and writes ``benchmarks/results/proxy.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from faultline.proxy.client import ProxyClient  # noqa: E402
from faultline.stack._embedded import EmbeddedRedis, free_port, wait_for_port  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "proxy.json"


def start_faultline(port: int, src: Path = ROOT) -> subprocess.Popen[bytes]:
    # ``-m`` puts the working directory first on sys.path: ``src``'s package is the one run
    proc = subprocess.Popen(
        [sys.executable, "-m", "faultline", "proxy", "serve", "--port", str(port)],
        cwd=src, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    wait_for_port(port)
    return proc


def start_toxiproxy(binary: str, port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [binary, "-host", "127.0.0.1", "-port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    wait_for_port(port)
    return proc


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def redis_benchmark(port: int, requests: int, clients: int) -> float:
    """Requests per second (mean of GET and SET) through ``port``."""
    out = subprocess.run(
        ["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-c", str(clients),
         "-n", str(requests), "-t", "get,set", "--csv"],
        capture_output=True, text=True, timeout=600, check=True,
    ).stdout
    rates = []
    for line in out.splitlines():
        fields = [f.strip('"') for f in line.split(",")]
        if fields and fields[0] in ("GET", "SET"):
            rates.append(float(fields[1]))
    if not rates:
        raise RuntimeError(f"no result from redis-benchmark: {out!r}")
    return statistics.fmean(rates)


def ping_latencies(port: int, count: int) -> list[float]:
    """Milliseconds per PING round trip on one connection."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        samples = []
        for i in range(count + 50):
            start = time.perf_counter()
            sock.sendall(b"PING\r\n")
            reply = b""
            while not reply.endswith(b"\r\n"):
                chunk = sock.recv(64)
                if not chunk:
                    raise ConnectionError("closed")
                reply += chunk
            if i >= 50:  # warm-up
                samples.append((time.perf_counter() - start) * 1000.0)
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=50_000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--pings", type=int, default=3000)
    parser.add_argument("--baseline-src", type=Path, default=None,
                        help="a directory holding another faultline package to measure too")
    args = parser.parse_args()
    if shutil.which("redis-benchmark") is None:
        print("redis-benchmark not found (install redis-tools)", file=sys.stderr)
        return 1

    redis = EmbeddedRedis(appendonly=False).start()
    procs: list[subprocess.Popen[bytes]] = []
    targets: dict[str, int] = {"direct": redis.port}
    pids: dict[str, int] = {}
    try:
        sources = [("", ROOT)]
        if args.baseline_src is not None:
            sources.append(("@base", args.baseline_src.resolve()))
        for suffix, src in sources:
            api = free_port()
            procs.append(start_faultline(api, src))
            client = ProxyClient(f"http://127.0.0.1:{api}")
            proxy = client.create_proxy(
                "redis", listen="127.0.0.1:0", upstream=f"127.0.0.1:{redis.port}")
            targets[f"faultline{suffix}"] = int(proxy["listen"].rsplit(":", 1)[1])
            pids[f"faultline{suffix}"] = procs[-1].pid
            for ms in (0, 1):
                toxic = client.create_proxy(
                    f"redis_lat{ms}", listen="127.0.0.1:0", upstream=f"127.0.0.1:{redis.port}")
                for stream in ("upstream", "downstream"):
                    client.add_toxic(f"redis_lat{ms}", type="latency", stream=stream,
                                     attributes={"latency": ms})
                targets[f"faultline+lat{ms}{suffix}"] = int(toxic["listen"].rsplit(":", 1)[1])
                pids[f"faultline+lat{ms}{suffix}"] = procs[-1].pid
        toxiproxy = shutil.which("toxiproxy-server")
        if toxiproxy:
            tapi = free_port()
            procs.append(start_toxiproxy(toxiproxy, tapi))
            tproxy = ProxyClient(f"http://127.0.0.1:{tapi}").create_proxy(
                "redis", listen=f"127.0.0.1:{free_port()}", upstream=f"127.0.0.1:{redis.port}")
            targets["toxiproxy"] = int(tproxy["listen"].rsplit(":", 1)[1])
            pids["toxiproxy"] = procs[-1].pid

        rps: dict[str, list[float]] = {name: [] for name in targets}
        cpu_us: dict[str, list[float]] = {name: [] for name in pids}
        for _ in range(args.rounds):
            for name, port in targets.items():
                before = cpu_seconds(pids[name]) if name in pids else 0.0
                rps[name].append(redis_benchmark(port, args.requests, args.clients))
                if name in pids:
                    used = cpu_seconds(pids[name]) - before
                    cpu_us[name].append(used / (2 * args.requests) * 1e6)
        latency = {name: ping_latencies(port, args.pings) for name, port in targets.items()}
    finally:
        for proc in procs:
            stop(proc)
        redis.cleanup()

    direct_p50 = statistics.median(latency["direct"])
    rows: dict[str, dict[str, Any]] = {}
    for name in targets:
        med = statistics.median(rps[name])
        # each round's ratio pairs measurements taken back to back: the machine's
        # background load drifts less between them than across the whole run
        ratios = [r / d for r, d in zip(rps[name], rps["direct"], strict=True)]
        p50 = statistics.median(latency[name])
        p99 = statistics.quantiles(latency[name], n=100)[98]
        rows[name] = {
            "rps_median": round(med, 1),
            "rps_rounds": [round(r, 1) for r in rps[name]],
            "ratio_of_direct": round(statistics.median(ratios), 3),
            "ratio_rounds": [round(r, 3) for r in ratios],
            "proxy_cpu_us_per_request": (
                round(statistics.median(cpu_us[name]), 2) if cpu_us.get(name) else None
            ),
            "p50_ms": round(p50, 4),
            "p99_ms": round(p99, 4),
            "p50_added_ms": round(p50 - direct_p50, 4),
        }

    print(f"\nredis-benchmark GET/SET, {args.clients} connections, {args.requests} requests, "
          f"median of {args.rounds} interleaved rounds (ratio: median of per-round ratios); "
          f"PING latency on 1 connection; CPU: the proxy process's CPU time per request\n")
    print(f"{'target':<20} {'req/s':>10} {'ratio':>7} {'p50 ms':>8} {'p99 ms':>8} "
          f"{'p50 added':>10} {'CPU us/req':>11}")
    for name, row in rows.items():
        cpu = row["proxy_cpu_us_per_request"]
        print(f"{name:<20} {row['rps_median']:>10.0f} {row['ratio_of_direct']:>7.3f} "
              f"{row['p50_ms']:>8.3f} {row['p99_ms']:>8.3f} {row['p50_added_ms']:>10.3f} "
              f"{'-' if cpu is None else f'{cpu:.1f}':>11}")
    if "toxiproxy" not in rows:
        print("\n(toxiproxy-server not on PATH: not measured)")

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({
        "benchmark": "proxy",
        "load": {"tool": "redis-benchmark", "tests": "get,set", "clients": args.clients,
                 "requests": args.requests, "rounds": args.rounds, "pings": args.pings},
        "baseline_src": str(args.baseline_src) if args.baseline_src else None,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_avg_1m": os.getloadavg()[0]},
        "targets": rows,
        "targets_met": {
            "throughput_ratio_ge_0.45": rows["faultline"]["ratio_of_direct"] >= 0.45,
            "p50_added_lt_1ms": rows["faultline"]["p50_added_ms"] < 1.0,
        },
    }, indent=2) + "\n")
    print(f"\nwrote {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
