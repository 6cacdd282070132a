"""Proof of ``faultline explore`` (README's exploration table; not a test).

For every deliberate bug of ``payments/bugs.py``: ``faultline explore --bugs X --seed 1
--budget 20`` as a user types it (a separate process, its own runs folder), never told
which scenario catches the bug; then ``faultline run minimal.yaml --bugs X`` three times,
each on a fresh stack, to see the minimal drill fail again. Then the correct stack:
``faultline explore --seed 1 --budget 30`` must find nothing (false alarms: zero).

    .venv/bin/python scripts/explore_proof.py [--only BUG] [--no-correct]
        [--shrink-runs 40] [--out DIR]

Results are merged into ``benchmarks/results/explore.json`` (one entry per bug, so a
partial re-run keeps the others) and printed as the markdown table.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from payments.bugs import BUGS  # noqa: E402

RESULTS = REPO / "benchmarks" / "results" / "explore.json"
FAULTLINE = [sys.executable, "-m", "faultline"]


def _explore(out: Path, bugs: list[str], budget: int, shrink_runs: int) -> dict[str, Any]:
    name = bugs[0] if bugs else "correct"
    cwd = out / name
    cwd.mkdir(parents=True, exist_ok=True)
    cmd = [*FAULTLINE, "explore", "--seed", "1", "--budget", str(budget), "--no-progress",
           "--shrink-runs", str(shrink_runs), "--runs-dir", "runs"]
    if bugs:
        cmd += ["--bugs", ",".join(bugs)]
    began = time.monotonic()
    with open(cwd / "explore.out", "w") as log:
        res = subprocess.run(cmd, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, check=False)
    seconds = round(time.monotonic() - began)
    folders = sorted((cwd / "runs").glob("explore-*"))
    report = json.loads((folders[-1] / "explore.json").read_text()) if folders else {}
    entry: dict[str, Any] = {"exit_code": res.returncode, "seconds": seconds,
                             "drills_explored": report.get("drills_explored"),
                             "drill_runs": report.get("drill_runs"),
                             "folder": str(folders[-1]) if folders else None,
                             "drills": [{"index": d["index"], "name": d["name"],
                                         "exit_code": d["exit_code"], "failed": d["failed"]}
                                        for d in report.get("drills", [])]}
    finding = report.get("finding")
    if finding:
        entry.update({
            "first_failure_at": finding["drill"], "checker": finding["failure"]["checker"],
            "kinds": finding["failure"]["kinds"], "original_size": finding["original_size"],
            "minimal_size": finding["minimal_size"], "shrink_runs": finding["shrink"]["runs"],
            "shrink_stopped": finding["shrink"]["stopped"], "reproduced": finding["reproduced"],
            "replay": finding["replay"], "minimal_file": finding["minimal_file"],
            "confirmed": finding.get("confirmed")})
    return entry


def _replays(minimal: Path, bugs: list[str], checker: str, n: int = 3) -> list[dict[str, Any]]:
    out = []
    for _ in range(n):
        began = time.monotonic()
        res = subprocess.run([*FAULTLINE, "run", str(minimal), "--bugs", ",".join(bugs),
                              "--runs-dir", "replays"],
                             cwd=minimal.parent, capture_output=True, text=True, check=False)
        out.append({"exit_code": res.returncode, "seconds": round(time.monotonic() - began),
                    "checker_named": checker in res.stdout})
        print(f"    replay: exit {res.returncode}", flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", default=[], help="bug(s) to run")
    parser.add_argument("--no-correct", action="store_true")
    parser.add_argument("--correct-only", action="store_true")
    parser.add_argument("--shrink-runs", type=int, default=40)
    parser.add_argument("--budget", type=int, default=20,
                        help="drills per bug; not 20: stored as an extended search beside "
                             "the budget-20 result")
    parser.add_argument("--out", default="/tmp/faultline-explore-proof")
    args = parser.parse_args(argv)
    out = Path(args.out)
    results: dict[str, Any] = (json.loads(RESULTS.read_text()) if RESULTS.exists()
                               else {"bugs": {}, "correct": None})
    bugs = [] if args.correct_only else (args.only or list(BUGS))
    for bug in bugs:
        print(f"{bug}: exploring", flush=True)
        entry = _explore(out / f"budget-{args.budget}" if args.budget != 20 else out, [bug],
                         args.budget, args.shrink_runs)
        if entry.get("minimal_file"):
            entry["replays"] = _replays(Path(entry["minimal_file"]), [bug], entry["checker"])
        entry["measured_at"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        entry["budget"] = args.budget
        if args.budget == 20:
            results["bugs"][bug] = entry
        else:
            results["bugs"].setdefault(bug, {})["extended"] = entry
        RESULTS.write_text(json.dumps(results, indent=1))
        print(f"{bug}: exit {entry['exit_code']} {entry.get('checker')} "
              f"at drill {entry.get('first_failure_at')} in {entry['seconds']} s", flush=True)
    if not args.no_correct or args.correct_only:
        print("correct stack: exploring 30 drills", flush=True)
        entry = _explore(out, [], 30, args.shrink_runs)
        entry["measured_at"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        results["correct"] = entry
        RESULTS.write_text(json.dumps(results, indent=1))
    print(table(results))
    return 0


def _row(bug: str, e: dict[str, Any], found: str) -> str:
    m, o = e["minimal_size"], e["original_size"]
    again = sum(1 for r in e.get("replays", []) if r["exit_code"] in (1, 2) and r["checker_named"])
    c = e.get("confirmed") or {}
    confirmed = ("—" if not c.get("replays") else
                 f"{c['failed']} of {c['replays']}"
                 + (f", {c['walked_back']} walked back" if c.get("walked_back") else "")
                 + ("" if c.get("reliable") else " (FLAKY)"))
    return (f"| `{bug}` | {found} | `{e['checker']}` ({', '.join(e['kinds'])}) | "
            f"{m['faults']}, {m['load_seconds']:g} s ({o['faults']}, {o['load_seconds']:g} s) | "
            f"{e['shrink_runs']} ({e['shrink_stopped']}) | {confirmed} | "
            f"{again} of {len(e.get('replays', []))} |")


def table(results: dict[str, Any]) -> str:
    rows = ["| bug (`--bugs`) | first failure at drill | checker (kind) | minimal: faults, "
            "s of load (drawn) | shrink runs | explore's replays of it | "
            "`run minimal.yaml` fails again |",
            "|---|---|---|---|---|---|---|"]
    for bug, e in results["bugs"].items():
        if "checker" not in e and "checker" in e.get("extended", {}):
            x = e["extended"]
            rows.append(_row(bug, x, f"not in {e['drills_explored']}; at {x['first_failure_at']}"
                                     f" of {x['budget']} (`--budget {x['budget']}`)"))
            continue
        if "checker" not in e:
            rows.append(f"| `{bug}` | not found in {e['drills_explored']} (exit "
                        f"{e['exit_code']}) | — | — | — | — | — |")
            continue
        rows.append(_row(bug, e, f"{e['first_failure_at']} of 20"))
    c = results.get("correct")

    if c:
        rows.append(f"| (correct stack, budget 30) | exit {c['exit_code']}: "
                    f"{c['drills_explored']} drills, "
                    f"{sum(1 for d in c['drills'] if d['exit_code'] in (1, 2))} violations "
                    "| — | — | — | — | — |")
    return "\n".join(rows)


if __name__ == "__main__":
    sys.exit(main())
