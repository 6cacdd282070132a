"""Checking a one-million-operation history must take under 10 s.

Generates a synthetic, consistent run (``faultline.checks.synthetic``: 1,000,000
operations = 2,000,000 history lines, the matching ledger, outbox, stream and audit
chain), then times ``run_checks`` (every invariant) + ``check_slos`` + ``verdict``.
Generation is not timed. Writes benchmarks/results/checkers.json.

    .venv/bin/python benchmarks/checkers.py [--ops 1000000]
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import sys
import time
from pathlib import Path

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
        f"{len(state['audit']):,} audit rows) in {generated:.1f}s"
    )
    gc.collect()
    gc.disable()  # as the CLI would for a one-shot check: no cyclic garbage is made here
    try:
        timings: dict[str, float] = {}
        start = time.perf_counter()
        ctx = CheckContext(scenario=scenario)
        results = []
        for name in scenario.invariants:
            t = time.perf_counter()
            results += run_checks([name], run.history, state, ctx)
            timings[name] = time.perf_counter() - t
        t = time.perf_counter()
        results += check_slos(scenario, run.history, ctx)
        timings["slos"] = time.perf_counter() - t
        v = verdict(results, expected=scenario.invariants, scenario=scenario.name)
        total = time.perf_counter() - start
    finally:
        gc.enable()
    for name, secs in timings.items():
        print(f"  {name:28s} {secs:6.2f}s")
    print(f"checked {args.ops:,} operations in {total:.2f}s (limit {LIMIT_S:.0f}s): "
          f"verdict {v.status}, exit {v.exit_code}")
    bad = [r.name for r in results if r.valid is not True]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "operations": args.ops,
        "history_lines": len(run.history),
        "transfers": len(state["transfers"]),
        "check_seconds": round(total, 3),
        "limit_seconds": LIMIT_S,
        "per_checker_seconds": {k: round(s, 3) for k, s in timings.items()},
        "exit_code": v.exit_code,
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(),
    }, indent=2) + "\n", encoding="utf-8")
    if bad:
        print(f"unexpected non-passing checks: {bad}")
        return 1
    return 0 if total < LIMIT_S else 1


if __name__ == "__main__":
    sys.exit(main())
