"""Detection over several seeds: does each catalogue drill catch its deliberate bug every
time, and hold on the correct stack every time? (README's bug table; not a test.)

For every (bug, scenario) pair of :data:`MATRIX` the drill runs with ``--bugs BUG`` under
seeds 1..N, and without a bug under the same seeds; a run is a catch when it exits 1 with
the expected checker among the failed ones (after the drill, or already in its
steady-state probe). Every run gets a fresh stack: a stack a bug has damaged in one run
must not decide the next.

    .venv/bin/python scripts/bug_detection.py [--seeds 5] [--first-seed 1] [--only worker_ack_before_apply]
        [--no-correct | --correct-only] [--keep DIR]

Writes ``benchmarks/results/bug_detection.json`` and prints the markdown table.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from faultline.drill import DrillOptions, StackPool, run_drill  # noqa: E402

#: bug -> (catalogue scenario, the checker that must name it)
MATRIX: dict[str, tuple[str, str]] = {
    "ack_before_commit": ("pg-down", "acknowledged_exactly_once"),
    "idempotency_not_atomic": ("lost-ack", "acknowledged_exactly_once"),
    "outbox_outside_tx": ("pg-failover-flap", "outbox_delivered"),
    "worker_ack_before_apply": ("worker-kill", "outbox_delivered"),
    "non_negative_in_python": ("pg-latency-spike", "non_negative"),
    "relay_drops_on_error": ("redis-restart", "outbox_delivered"),
    "audit_chain_skip": ("lost-ack", "audit_complete"),
    "projection_double_apply": ("worker-pause", "projection_converges"),
}


def _runs(scenario: str, bugs: list[str], seeds: list[int], runs_dir: Path) -> list[dict[str, Any]]:
    out = []
    for seed in seeds:
        pool = StackPool(reuse=False)
        try:
            began = time.monotonic()
            outcome = run_drill(REPO / "scenarios" / f"{scenario}.yaml",
                                DrillOptions(seed=seed, bugs=bugs, runs_dir=runs_dir,
                                             progress=False), pool=pool)
            v = outcome.verdict
            results = [*v.results, *v.steady_state] if v else []
            failed = sorted({r.name for r in results if r.valid is False})
            faults = v.faults if v else []
            out.append({"seed": seed, "exit_code": outcome.exit_code, "failed": failed,
                        "seconds": round(time.monotonic() - began, 1),
                        "effects": {f["name"]: f.get("effect") for f in faults},
                        "errors": {r.name: [(e["type"], e["count"]) for e in r.errors]
                                   for r in results if r.valid is False}})
            print(f"  {scenario} bugs={','.join(bugs) or '-'} seed {seed}: exit "
                  f"{outcome.exit_code} {' '.join(failed)}", flush=True)
        finally:
            pool.close()
    return out


def _merge(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Runs by seed: a seed run again replaces its earlier run."""
    by_seed = {r["seed"]: r for r in old} | {r["seed"]: r for r in new}
    return [by_seed[s] for s in sorted(by_seed)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--only", action="append", default=[], help="bug(s) to run")
    parser.add_argument("--no-correct", action="store_true", help="skip the correct stack")
    parser.add_argument("--correct-only", action="store_true",
                        help="only the correct stack (the scenarios of --only's bugs)")
    parser.add_argument("--keep", default=None, help="keep the run folders here")
    parser.add_argument("--first-seed", type=int, default=1,
                        help="start at this seed (a partial re-run adds to the results)")
    args = parser.parse_args(argv)
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    bugs = args.only or list(MATRIX)
    began = time.monotonic()
    out = REPO / "benchmarks" / "results" / "bug_detection.json"
    # merged with what is stored: a partial re-run (--only, --first-seed) keeps the rest
    results: dict[str, Any] = (json.loads(out.read_text()) if out.exists()
                               else {"bugs": {}, "correct": {}})
    with tempfile.TemporaryDirectory(prefix="faultline-detection-") as scratch:
        tmp = args.keep or scratch
        for bug in [] if args.correct_only else bugs:
            scenario, checker = MATRIX[bug]
            runs = _merge(results["bugs"].get(bug, {}).get("runs", []),
                          _runs(scenario, [bug], seeds, Path(tmp)))
            caught = sum(1 for r in runs if r["exit_code"] == 1 and checker in r["failed"])
            results["bugs"][bug] = {"scenario": scenario, "checker": checker,
                                    "caught": caught, "runs": runs}
            out.write_text(json.dumps(results, indent=1))
        if not args.no_correct:
            for scenario in sorted({MATRIX[b][0] for b in bugs}):
                runs = _merge(results["correct"].get(scenario, {}).get("runs", []),
                              _runs(scenario, [], seeds, Path(tmp)))
                held = sum(1 for r in runs if r["exit_code"] == 0)
                results["correct"][scenario] = {"held": held, "runs": runs}
                out.write_text(json.dumps(results, indent=1))
    results["machine_seconds"] = (results.get("machine_seconds", 0)
                                  + round(time.monotonic() - began))
    results["seeds"] = sorted({r["seed"] for x in [*results["bugs"].values(),
                                                   *results["correct"].values()]
                               for r in x["runs"]})
    out.write_text(json.dumps(results, indent=1))
    print("\n| bug (`--bugs`) | scenario | checker | caught (k of n seeds) | per seed |")
    print("|---|---|---|---|---|")
    for bug, r in results["bugs"].items():
        marks = " ".join(("✓" if x["exit_code"] == 1 and r["checker"] in x["failed"]
                          else f"✗({x['exit_code']})") for x in r["runs"])
        print(f"| `{bug}` | `{r['scenario']}` | `{r['checker']}` | "
              f"{r['caught']}/{len(r['runs'])} | {marks} |")
    for scenario, r in results["correct"].items():
        print(f"| (correct stack) | `{scenario}` | — | held {r['held']}/{len(r['runs'])} | "
              + " ".join(str(x["exit_code"]) for x in r["runs"]) + " |")
    print(f"\nmachine time: {results['machine_seconds'] / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
