"""Checking stored runs of 1M, 3M and 10M operations, from disk, side by side with the
in-memory path.

Writes synthetic run folders (``python -m faultline.checks.synthetic``: every operation
an invoke and a completion, the matching ledger, outbox, stream, projections and audit
chain; writing is not timed), then times, each in a separate process:

- ``disk``: ``faultline.drill.judge(folder)`` (what ``faultline check DIR``
  runs: every invariant, every SLO, the verdict), the files streamed into columns;
- ``memory``: the history loaded as a list of dicts and the snapshot as a dict, then
  ``run_checks`` + ``check_slos`` + ``verdict`` (the in-memory API), at 1M and 3M;
- ``memory-before`` (with ``--before REF``): the same with the checkers of git ``REF``
  (the in-memory implementation this round replaced).

Peak memory is the largest sum of the proportional set sizes (PSS: a page a forked
helper shares with its parent counts once) of the check process and its helpers,
sampled from /proc 4 times a second (a lone process: its resident set, every 25 ms);
the largest resident set of any one of them is kept beside it. The machine may be shared: its load average is recorded before and after
each run.
Results: benchmarks/results/checkers.json.

    .venv/bin/python benchmarks/checkers.py [--ops 1000000 3000000 10000000]
        [--memory-ops 1000000 3000000] [--dir /tmp/faultline-bench] [--before REF]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from io import BytesIO
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {1_000_000: (5.0, 400), 10_000_000: (60.0, 3000)}  # ops: (wall s, peak MB)

DISK = """
import gc, sys
from pathlib import Path
from faultline.drill import RunFolder, judge
from faultline.scenario import load_scenario
gc.disable()  # a one-shot check makes no cyclic garbage worth collecting
folder = RunFolder(Path(sys.argv[1]))
v = judge(folder, load_scenario(folder.scenario)).verdict
print(v.exit_code, v.reason)
"""

MEMORY = """
import gc, sys, orjson
from pathlib import Path
from faultline.checks import CheckContext, check_slos, run_checks, verdict
from faultline.drill._store import RunFolder
from faultline.scenario import load_scenario
gc.disable()
folder = RunFolder(Path(sys.argv[1]))
scn = load_scenario(folder.scenario)

def rows(path):
    with open(path, "rb") as fh:
        return [orjson.loads(line) for line in fh]

def snapshot(directory):
    state = {p.stem: rows(p) for p in directory.glob("*.jsonl")}
    for manifest in directory.glob("*.json"):
        state.update(orjson.loads(manifest.read_bytes())["values"])
    return state

history = rows(folder.history)
state = snapshot(folder.final_state)
ctx = CheckContext(scenario=scn, baseline=snapshot(folder.baseline_state))
results = run_checks(scn.invariants, history, state, ctx) + check_slos(scn, history, ctx)
v = verdict(results, expected=scn.invariants, scenario=scn.name)
print(v.exit_code, v.reason)
"""


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants (from /proc/<pid>/task/*/children)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as fh:
                    todo += [int(c) for c in fh.read().split()]
        except OSError:
            continue
    return out


def _pss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024
    except (OSError, ValueError):
        return 0


def timed(code: str, run_dir: Path, pythonpath: str | None = None) -> dict[str, Any]:
    """Run ``code`` in a fresh interpreter; wall seconds, CPU seconds, peak tree RSS."""
    env = dict(os.environ)
    env["PYTHONPATH"] = pythonpath or str(ROOT)
    load_before = os.getloadavg()[0]
    before = os.times()
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code, str(run_dir)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = [0, 0]

    def sample() -> None:
        # RSS (cheap) every 25 ms; PSS (the kernel walks every page) 4 times a second
        tick = 0
        while proc.poll() is None:
            tree = _tree(proc.pid)
            rss = [_rss_kb(p) for p in tree]
            peak[1] = max(peak[1], max(rss))
            if len(tree) == 1:
                peak[0] = max(peak[0], rss[0])
            elif tick % 10 == 0:
                peak[0] = max(peak[0], sum(_pss_kb(p) for p in tree))
            tick += 1
            time.sleep(0.025)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = proc.communicate()
    wall = time.perf_counter() - t0
    sampler.join()
    after = os.times()
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    if proc.returncode != 0:
        raise SystemExit(f"check failed ({proc.returncode}): {err[-2000:]}")
    return {
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "peak_mb": round(peak[0] / 1024),
        "peak_rss_one_process_mb": round(peak[1] / 1024),
        "verdict": out.strip().splitlines()[-1][:120],
        "load_before": round(load_before, 2),
        "load_after": round(os.getloadavg()[0], 2),
    }


def write_folder(ops: int, base: Path) -> Path:
    path = base / f"run-{ops}"
    stamp = path / ".benchmark"
    if stamp.is_file() and stamp.read_text() == f"{ops} 42":
        return path
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "faultline.checks.synthetic", "--ops", str(ops),
                    "--out", str(path), "--seed", "42"], check=True, cwd=ROOT,
                   env={**os.environ, "PYTHONPATH": str(ROOT)})
    stamp.write_text(f"{ops} 42")
    print(f"wrote {ops:,} operations in {time.perf_counter() - t0:.0f}s to {path}", flush=True)
    return path


def checkout(ref: str, into: Path) -> str:
    """The ``faultline`` package of git ``ref``, unpacked into ``into``."""
    blob = subprocess.run(["git", "archive", ref, "faultline"], cwd=ROOT, check=True,
                          capture_output=True).stdout
    with tarfile.open(fileobj=BytesIO(blob)) as tar:
        tar.extractall(into, filter="data")
    return f"{into}{os.pathsep}{ROOT}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, nargs="+", default=[1_000_000, 3_000_000, 10_000_000])
    parser.add_argument("--memory-ops", type=int, nargs="*", default=[1_000_000, 3_000_000])
    parser.add_argument("--dir", default=str(Path(tempfile.gettempdir()) / "faultline-bench"))
    parser.add_argument("--before", help="git ref whose in-memory checkers to time as well")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "checkers.json"))
    args = parser.parse_args()
    base = Path(args.dir)
    base.mkdir(parents=True, exist_ok=True)
    before_path = checkout(args.before, base / "before") if args.before else None
    rows: list[dict[str, Any]] = []
    for ops in sorted(set(args.ops) | set(args.memory_ops)):
        folder = write_folder(ops, base)
        size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
        paths = [("disk", DISK, None)]
        if ops in args.memory_ops:
            paths.append(("memory", MEMORY, None))
            if before_path:
                paths.append((f"memory-before ({args.before})", MEMORY, before_path))
        for name, code, pythonpath in paths:
            if name == "disk" and ops not in args.ops:
                continue
            result = {"operations": ops, "path": name, "run_bytes": size,
                      **timed(code, folder, pythonpath)}
            target = TARGETS.get(ops) if name == "disk" else None
            if target:
                result["target"] = {"wall_s": target[0], "peak_mb": target[1]}
            rows.append(result)
            print(f"{ops:>11,} {name:28s} {result['wall_s']:7.1f} s wall {result['cpu_s']:7.1f} s cpu "
                  f"{result['peak_mb']:7,} MB  load {result['load_before']}->{result['load_after']}"
                  f"  {result['verdict']}", flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "runs": rows,
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "note": "wall time and peak memory (PSS summed) of the whole check, its helper "
                "processes included; "
                "the machine is shared: see load_before/load_after",
    }, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
