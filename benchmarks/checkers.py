"""Checking a one-million-operation history must take under 10 s.

Generates a synthetic, consistent run (``faultline.checks.synthetic``: 1,000,000
operations = 2,000,000 history lines, the matching ledger, outbox, stream and audit
chain), then times ``run_checks`` (every invariant) + ``check_slos`` + ``verdict``.
Generation is not timed. Prints per-checker CPU time, then one full check (every
invariant, every SLO, the verdict) with its wall and CPU time. The machine may be
shared: the load average is recorded alongside. Writes benchmarks/results/checkers.json.

    .venv/bin/python benchmarks/checkers.py [--ops 1000000]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

from faultline.checks import CheckContext, check_slos, run_checks, verdict
from faultline.checks.synthetic import synthetic_run
from faultline.scenario import parse_scenario

LIMIT_S = 10.0
SCENARIO = """
name: checker-benchmark
load: {duration: 30m}
faults: [{at: 5m, for: 5m, hop: api->postgres, toxic: latency, latency: 100}]
slos:
  - {phase: before, p50_ms: 50, p99_ms: 100, error_rate: 0.1}
  - {phase: during, p99_ms: 500, throughput: 10}
  - {phase: after, error_rate: 0.1, recover_within: 60s}
"""


def _check(history: list, state: dict, scenario: Any) -> tuple[float, float, Any, dict]:  # type: ignore[type-arg]
    """One full check (as ``faultline check`` does it): wall and CPU seconds."""
    timings: dict[str, float] = {}
    gc.collect()
    gc.disable()  # a one-shot check makes no cyclic garbage worth collecting
    try:
        wall, cpu = time.perf_counter(), time.process_time()
        ctx = CheckContext(scenario=scenario)
        t = time.perf_counter()
        results = run_checks(scenario.invariants, history, state, ctx)
        timings["invariants"] = time.perf_counter() - t
        t = time.perf_counter()
        results += check_slos(scenario, history, ctx)
        timings["slos"] = time.perf_counter() - t
        v = verdict(results, expected=scenario.invariants, scenario=scenario.name)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    finally:
        gc.enable()
    bad = [r.name for r in results if r.valid is not True]
    if bad:
        print(f"unexpected non-passing checks: {bad}")
    return wall, cpu, v, timings


def _per_checker(history: list, state: dict, scenario: Any) -> dict[str, float]:  # type: ignore[type-arg]
    """Serial CPU seconds per checker (the first one pays for the shared indexes)."""
    out: dict[str, float] = {}
    ctx = CheckContext(scenario=scenario)
    gc.disable()
    try:
        for name in scenario.invariants:
            t = time.process_time()
            run_checks([name], history, state, ctx)
            out[name] = time.process_time() - t
        t = time.process_time()
        check_slos(scenario, history, ctx)
        out["slos"] = time.process_time() - t
    finally:
        gc.enable()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=1_000_000)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "checkers.json"))
    args = parser.parse_args()

    t0 = time.perf_counter()
    run = synthetic_run(args.ops, seed=42, accounts=1000)
    generated = time.perf_counter() - t0
    scenario = parse_scenario(SCENARIO, "benchmark")
    state = run.state
    print(
        f"generated {args.ops:,} operations ({len(run.history):,} history lines, "
        f"{len(state['transfers']):,} transfers, {len(state['entries']):,} entries, "
        f"{len(state['audit']):,} audit rows) in {generated:.1f}s; "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    per_checker = _per_checker(run.history, state, scenario)
    for name, secs in per_checker.items():
        print(f"  {name:28s} {secs:6.2f}s cpu")
    wall, cpu, v, timings = _check(run.history, state, scenario)
    print(f"checked {args.ops:,} operations in {wall:.2f}s wall, {cpu:.2f}s cpu "
          f"(invariants {timings['invariants']:.2f}s, slos {timings['slos']:.2f}s; "
          f"limit {LIMIT_S:.0f}s): verdict {v.status}, exit {v.exit_code}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "operations": args.ops,
        "history_lines": len(run.history),
        "transfers": len(state["transfers"]),
        "entries": len(state["entries"]),
        "audit_rows": len(state["audit"]),
        "check_seconds": round(wall, 3),
        "check_cpu_seconds": round(cpu, 3),
        "invariants_seconds": round(timings["invariants"], 3),
        "slos_seconds": round(timings["slos"], 3),
        "per_checker_cpu_seconds": {k: round(s, 3) for k, s in per_checker.items()},
        "limit_seconds": LIMIT_S,
        "exit_code": v.exit_code,
        "load_average": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "machine": platform.machine(),
    }, indent=2) + "\n", encoding="utf-8")
    return 0 if wall < LIMIT_S and v.exit_code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
