"""Memory of a long drill: is the runner's and Locust's resident set flat over a soak?

A drill must hold hours of load in bounded memory: the history is written as it comes,
never held; metric series go to ``metrics.jsonl`` scrape by scrape. This benchmark runs
one real soak drill and watches the processes' memory while it runs:

- it writes a soak scenario into a temp folder (the payments system, ``profile: soak``,
  ``load.rate`` = ``--rate``: a constant arrival rate, so the rate is really offered
  whatever the latency; three short faults at 1/4, 1/2 and 3/4 of the run, so that it
  is a drill and not only load) and runs ``faultline run`` on it as a subprocess, with
  ``--runs-dir`` in the same temp folder;
- once a second it reads the resident set (``/proc/PID/statm``) of the runner and its
  descendants (found through ``/proc/*/stat``: ppid), for the maxima; every
  ``--sample`` seconds from the first operation on it records a sample: RSS, PSS
  (``/proc/PID/smaps_rollup``) and open file descriptors per process - the runner,
  Locust, the fault proxy and, for context, the payment services, Redis and PostgreSQL
  (all its processes summed) -, the size of the run folder's history files, and the
  load average;
- at the end: the drill's exit code and verdict, the operations and the achieved rate
  (from the merged history), and per process the first, last and largest RSS of the
  load phase and its slope (MB per hour, least squares over the load's samples after
  ``--warmup``); a table, and ``benchmarks/results/soak.json``.

Targets (PASS/MISS): the runner's and Locust's RSS slope below 5 MB/h, and their growth
from the first sample after the warm-up to the last below 10 %; the rate offered (client
completions per second in the history) at least 95 % of ``--rate``; the verdict held
(exit 0). Why 5 MB/h: at 200 operations/s an hour is 720,000 operations (1.44 M history
lines), so 5 MB/h is 7 bytes per operation - less than anything Python can keep per
operation (a list slot and the smallest object it points to are 36 bytes, a dict entry
more), so anything held per operation overshoots the bound several times; and it is
30 MB over the longest load the harness runs (6 h). Growth per second of wall time
(Locust's per-second counters) is 1.4 KB/s at the bound.

``--trace`` is for finding what grows: the runner, Locust and the fault proxy start
``tracemalloc`` (a ``sitecustomize`` on ``PYTHONPATH``, nothing in the project) and at
every sample write what grew since the first sample, by traceback, to
``trace-<role>-<pid>.txt`` (in the temp folder; kept). It slows them down and its own
tables swell their RSS: not for the measurement itself.

Not a test (30+ minutes); the machine may be shared: the load average is in every
sample.

    .venv/bin/python benchmarks/soak.py --soak 30m [--rate 200] [--users 20]
        [--sample 60s] [--warmup 5m] [--keep] [--trace] [--out FILE]
    .venv/bin/python benchmarks/soak.py --show benchmarks/results/soak.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from faultline.drill import RunFolder  # noqa: E402
from faultline.history import NEMESIS, is_error, iter_jsonl  # noqa: E402
from faultline.scenario import parse_duration  # noqa: E402

RESULTS = REPO / "benchmarks" / "results" / "soak.json"
#: the bounds of the targets (see the docstring for why)
MAX_SLOPE_MB_H = 5.0
MAX_GROWTH = 0.10
MIN_RATE_SHARE = 0.95
#: the processes the targets are about
GATED = ("runner", "locust")
#: the processes ``--trace`` traces
TRACED = (*GATED, "proxy")
#: seconds between two looks at the resident sets (for the maxima)
LOOK = 1.0
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024

SCENARIO = """\
name: soak-memory
description: >
  benchmarks/soak.py: {rate:g} operations/s offered at a constant arrival rate for
  {soak}, three short faults spread over the run; the runner's and Locust's memory must
  stay flat.
seed: 2027
load: {{profile: soak, users: {users}, spawn_rate: {users}, duration: {seconds:.0f}s,
        rate: {rate:g}}}
faults:
  - {{at: {q1:.0f}s, for: 10s, hop: api->postgres, toxic: latency, latency: 200ms}}
  - {{at: {q2:.0f}s, kill: worker-1, signal: SIGKILL, restart_after: 3s}}
  - {{at: {q3:.0f}s, for: 10s, hop: relay->redis, toxic: down}}
slos:
  - {{phase: after, error_rate: 0.05}}
settle: 120s
"""

#: ``--trace``: tracemalloc in the runner and in Locust, a diff on SIGUSR2
TRACE_HOOK = '''\
import os
_cmd = open("/proc/self/cmdline", "rb").read().split(b"\\0")
_faultline = b"faultline" in b" ".join(_cmd[:3])
_role = ("locust" if b"locust" in _cmd[1:3] else
         "runner" if _faultline and b"run" in _cmd else
         "proxy" if _faultline and b"proxy" in _cmd and b"serve" in _cmd else None)
if _role and os.environ.get("SOAK_TRACE_DIR"):
    import signal, tracemalloc
    tracemalloc.start(8)
    _dir, _first = os.environ["SOAK_TRACE_DIR"], []

    def _dump(signum, frame):
        import linecache
        snap = tracemalloc.take_snapshot()
        if not _first:
            _first.append(snap)
            return
        # what this hook itself allocates (the source lines it prints) is left out
        own = (tracemalloc.__file__, linecache.__file__)
        stats = [s for s in snap.compare_to(_first[0], "traceback")
                 if not any(f.filename in own for f in s.traceback)]
        grown = sum(s.size_diff for s in stats)
        with open(f"{_dir}/trace-{_role}-{os.getpid()}.txt", "w") as fh:
            fh.write(f"traced now {tracemalloc.get_traced_memory()[0] / 1e6:.1f} MB, "
                     f"grown since the first sample {grown / 1e6:+.2f} MB; tracemalloc's "
                     f"own tables {tracemalloc.get_tracemalloc_memory() / 1e6:.1f} MB "
                     "(in the RSS, not traced)\\n\\n")
            for s in stats[:25]:
                fh.write(f"{s.size_diff / 1e3:+10.1f} kB {s.count_diff:+8d} objects\\n")
                fh.write("".join(f"      {line}\\n" for line in s.traceback.format()[-8:]))

    signal.signal(signal.SIGUSR2, _dump)
    open(f"{_dir}/ready-{os.getpid()}", "w").close()
'''


# ---------------------------------------------------------------- /proc


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError:
        return b""


def _children() -> dict[int, list[int]]:
    """ppid -> pids, for every process now."""
    out: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        stat = _read(f"/proc/{name}/stat")
        # the command name is in parentheses and may contain spaces
        fields = stat[stat.rfind(b")") + 2:].split()
        if len(fields) > 2:
            out.setdefault(int(fields[1]), []).append(int(name))
    return out


def descendants(root: int) -> list[int]:
    """``root`` and every process below it (a forked Locust worker, a postgres backend)."""
    tree, out, todo = _children(), [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo += tree.get(pid, [])
    return out


def rss_kb(pid: int) -> int:
    fields = _read(f"/proc/{pid}/statm").split()
    return int(fields[1]) * PAGE_KB if len(fields) > 1 else 0


def pss_kb(pid: int) -> int | None:
    for line in _read(f"/proc/{pid}/smaps_rollup").splitlines():
        if line.startswith(b"Pss:"):
            return int(line.split()[1])
    return None


def open_fds(pid: int) -> int:
    """File descriptors open (sockets included: a proxy's connections show here)."""
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def role(pid: int, runner: int) -> str:
    """What this process is in the drill."""
    if pid == runner:
        return "runner"
    argv = _read(f"/proc/{pid}/cmdline").split(b"\0")
    comm = _read(f"/proc/{pid}/comm").strip().decode(errors="replace")
    if b"locust" in argv[1:3]:
        return "locust"
    if b"faultline" in b" ".join(argv[:3]) and b"proxy" in argv:
        return "proxy"
    module = next((a.decode() for a in argv[2:3] if a.startswith(b"payments.")), None)
    if module is not None and argv[1:2] == [b"-m"]:
        service = module.split(".", 1)[1]
        if service == "worker":
            for var in _read(f"/proc/{pid}/environ").split(b"\0"):
                if var.startswith(b"PAYMENTS_WORKER_NAME="):
                    return var.split(b"=", 1)[1].decode()
        return service
    if comm.startswith("postgres") or (argv and argv[0].endswith(b"postgres")):
        return "postgres"
    if comm.startswith("redis"):
        return "redis"
    return f"other:{comm}"


# ---------------------------------------------------------------- the watch


class Watch:
    """The runner's process tree, looked at once a second and sampled every ``sample`` s."""

    def __init__(self, runner: subprocess.Popen[bytes], runs_dir: Path, sample: float,
                 trace_dir: Path | None) -> None:
        self.runner = runner
        self.runs_dir = runs_dir
        self.sample_every = sample
        self.trace_dir = trace_dir
        self.folder: RunFolder | None = None
        self.load_t0: float | None = None
        self.load_t1: float | None = None
        self.next_sample = time.monotonic()
        self.samples: list[dict[str, Any]] = []
        #: role -> phase -> largest RSS (kB) seen at any look
        self.peaks: dict[str, dict[str, int]] = {}

    def phase(self) -> str:
        if self.load_t0 is None:
            return "setup"
        return "load" if self.load_t1 is None else "finish"

    def _find_folder(self) -> None:
        if self.folder is None:
            found = [p for p in self.runs_dir.iterdir() if p.is_dir() and not p.name.startswith(".")]
            if found:
                self.folder = RunFolder(found[0])

    def _history_files(self) -> list[Path]:
        assert self.folder is not None
        return sorted((self.folder.path / RunFolder.LOAD).glob("history-*.jsonl"))

    def look(self) -> None:
        """One look: phase changes, maxima, and a sample when one is due."""
        now = time.monotonic()
        self._find_folder()
        groups: dict[str, list[int]] = {}
        for pid in descendants(self.runner.pid):
            groups.setdefault(role(pid, self.runner.pid), []).append(pid)
        if self.load_t0 is None and self.folder is not None and any(
                p.stat().st_size for p in self._history_files()):
            self.load_t0 = self.next_sample = now
        elif self.load_t0 is not None and self.load_t1 is None and "locust" not in groups:
            self.load_t1 = now
            self.next_sample = now  # one sample as the load ends
        phase = self.phase()
        rss = {r: sum(rss_kb(p) for p in pids) for r, pids in groups.items()}
        for r, kb in rss.items():
            peaks = self.peaks.setdefault(r, {})
            peaks[phase] = max(peaks.get(phase, 0), kb)
        if now >= self.next_sample:
            self.next_sample += self.sample_every
            self.samples.append(self._sample(now, phase, groups, rss))

    def _sample(self, now: float, phase: str, groups: dict[str, list[int]],
                rss: dict[str, int]) -> dict[str, Any]:
        processes: dict[str, dict[str, Any]] = {}
        for r, pids in sorted(groups.items()):
            pss = [pss_kb(p) for p in pids]
            known = [kb for kb in pss if kb is not None]
            processes[r] = {"rss_kb": rss[r], "pids": pids,
                            "pss_kb": sum(known) if len(known) == len(pss) else None,
                            "fds": sum(open_fds(p) for p in pids)}
        if self.trace_dir is not None:
            for r in TRACED:
                for pid in groups.get(r, []):
                    if (self.trace_dir / f"ready-{pid}").exists():
                        os.kill(pid, signal.SIGUSR2)
        files: dict[str, int] = {}
        if self.folder is not None:
            files["load_history"] = sum(_size(p) for p in self._history_files())
            for name in (RunFolder.METRICS, RunFolder.NEMESIS, RunFolder.HISTORY):
                files[name] = _size(self.folder.file(name))
        t = now - (self.load_t0 if self.load_t0 is not None else now)
        row = {"t_s": round(t, 1), "phase": phase, "load1": round(os.getloadavg()[0], 2),
               "files": files, "processes": processes}
        gated = "  ".join(f"{r} {processes[r]['rss_kb'] / 1024:.1f} MB"
                          for r in GATED if r in processes)
        print(f"[{phase:6}] t={t:7.0f}s  load {row['load1']:5.2f}  {gated}  history "
              f"{files.get('load_history', 0) / 1e6:.1f} MB", flush=True)
        return row


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


# ---------------------------------------------------------------- the numbers


def slope_mb_h(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of ``(seconds, kB)`` points, in MB per hour."""
    if len(points) < 3:
        return None
    mt = statistics.fmean(t for t, _ in points)
    mv = statistics.fmean(v for _, v in points)
    var = sum((t - mt) ** 2 for t, _ in points)
    if var == 0:
        return None
    cov = sum((t - mt) * (v - mv) for t, v in points)
    return cov / var * 3600 / 1024


def process_summary(watch: Watch, warmup: float) -> dict[str, dict[str, Any]]:
    """Per process: first, last, max RSS of the load phase; slope and growth after warm-up."""
    load = [s for s in watch.samples if s["phase"] == "load"]
    roles = sorted({r for s in load for r in s["processes"]})
    out: dict[str, dict[str, Any]] = {}
    for r in roles:
        seen = [(s["t_s"], s["processes"][r]) for s in load if r in s["processes"]]
        if not seen:
            continue
        settled = [(t, p["rss_kb"]) for t, p in seen if t >= warmup]
        first_after = settled[0][1] if settled else None
        last = seen[-1][1]
        out[r] = {
            "samples": len(seen),
            "first_mb": round(seen[0][1]["rss_kb"] / 1024, 1),
            "first_after_warmup_mb": round(first_after / 1024, 1) if first_after else None,
            "last_mb": round(last["rss_kb"] / 1024, 1),
            "max_mb": round(watch.peaks.get(r, {}).get("load", 0) / 1024, 1),
            "slope_mb_per_h": _round(slope_mb_h(settled)),
            "growth": (round(last["rss_kb"] / first_after - 1, 4) if first_after else None),
            "pss_first_mb": _mb(seen[0][1]["pss_kb"]),
            "pss_last_mb": _mb(last["pss_kb"]),
            "pss_slope_mb_per_h": _round(slope_mb_h(
                [(t, p["pss_kb"]) for t, p in seen if t >= warmup and p["pss_kb"] is not None])),
            "processes": max(len(p["pids"]) for _, p in seen),
            "max_after_load_mb": round(watch.peaks.get(r, {}).get("finish", 0) / 1024, 1),
        }
    return out


def _round(x: float | None) -> float | None:
    return round(x, 2) if x is not None else None


def _mb(kb: int | None) -> float | None:
    return round(kb / 1024, 1) if kb is not None else None


def history_summary(path: Path) -> dict[str, Any]:
    """Client operations in the merged history: how many, how fast, per minute."""
    completions = errors = 0
    by_f: dict[str, int] = {}
    first = last = None
    minutes: dict[int, int] = {}
    for line in iter_jsonl(path):
        if line.get("process") == NEMESIS:
            continue
        t = int(line.get("time") or 0)
        if line.get("type") == "invoke":
            first = t if first is None else first
            continue
        completions += 1
        last = t
        by_f[str(line.get("f"))] = by_f.get(str(line.get("f")), 0) + 1
        errors += is_error(str(line.get("type")), line.get("status"))
        if first is not None:
            minute = (t - first) // 60_000_000_000
            minutes[minute] = minutes.get(minute, 0) + 1
    span = (last - first) / 1e9 if first is not None and last is not None else 0.0
    whole = [n / 60 for m, n in sorted(minutes.items()) if 0 < m < max(minutes, default=0)]
    return {
        "operations": completions, "errors": errors, "by_f": by_f, "seconds": round(span, 1),
        "rate": round(completions / span, 1) if span else 0.0,
        "rate_per_minute": {"min": round(min(whole), 1), "median": round(statistics.median(whole), 1),
                            "max": round(max(whole), 1)} if whole else None,
    }


# ---------------------------------------------------------------- the run


def run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    soak, sample = parse_duration(args.soak), parse_duration(args.sample)
    warmup = parse_duration(args.warmup) if args.warmup else max(sample, soak / 6)
    scenario = tmp / "soak-memory.yaml"
    scenario.write_text(SCENARIO.format(rate=args.rate, users=args.users, soak=args.soak,
                                        seconds=soak, q1=soak / 4, q2=soak / 2, q3=soak * 3 / 4))
    runs_dir = tmp / "runs"
    runs_dir.mkdir()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    trace_dir = None
    if args.trace:
        trace_dir = tmp / "trace"
        trace_dir.mkdir()
        (trace_dir / "sitecustomize.py").write_text(TRACE_HOOK)
        env["PYTHONPATH"] = os.pathsep.join(
            [str(trace_dir), str(REPO), *filter(None, [env.get("PYTHONPATH")])])
        env["SOAK_TRACE_DIR"] = str(trace_dir)
    argv = [sys.executable, "-m", "faultline", "run", str(scenario), "--runs-dir", str(runs_dir)]
    load_start = os.getloadavg()
    print(f"soak of {args.soak} at {args.rate:g} operations/s, {args.users} users; sample "
          f"every {sample:g}s, warm-up {warmup:g}s; runner output in {tmp}/runner.log", flush=True)
    began = time.monotonic()
    with open(tmp / "runner.log", "wb") as log:
        runner = subprocess.Popen(argv, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL)
    watch = Watch(runner, runs_dir, sample, trace_dir)
    try:
        while runner.poll() is None:
            watch.look()
            time.sleep(max(0.0, LOOK - (time.monotonic() - began) % LOOK))
    except KeyboardInterrupt:
        runner.send_signal(signal.SIGTERM)  # the drill unwinds: faults healed, stack stopped
        runner.wait(timeout=120)
        raise
    wall = time.monotonic() - began
    folder = watch.folder
    verdict: dict[str, Any] = {}
    record: dict[str, Any] = {}
    history: dict[str, Any] = {}
    if folder is not None:
        verdict = _json(folder.file(RunFolder.VERDICT))
        record = _json(folder.file(RunFolder.DRILL))
        if folder.history.exists():
            history = history_summary(folder.history)
    files = {p.name: _size(p) for p in ([*folder.path.iterdir()] if folder else []) if p.is_file()}
    return {
        "benchmark": "soak",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "config": {"soak_s": soak, "rate": args.rate, "users": args.users,
                   "sample_s": sample, "warmup_s": warmup, "trace": bool(args.trace),
                   "scenario": scenario.read_text()},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform(),
                    "loadavg_at_start": [round(x, 2) for x in load_start],
                    "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
                    "load1_during_load": _load_stats(watch.samples)},
        "drill": {"exit_code": runner.returncode, "wall_s": round(wall, 1),
                  "verdict": {k: verdict.get(k) for k in ("exit_code", "status", "reason")},
                  "phases": record.get("phases"), "run_dir_files": files,
                  "load_seconds": round(watch.load_t1 - watch.load_t0, 1)
                  if watch.load_t0 and watch.load_t1 else None},
        "history": history,
        "processes": process_summary(watch, warmup),
        "samples": watch.samples,
    }


def _json(path: Path) -> dict[str, Any]:
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return {}


def _load_stats(samples: list[dict[str, Any]]) -> dict[str, float] | None:
    loads = [s["load1"] for s in samples if s["phase"] == "load"]
    if not loads:
        return None
    return {"min": min(loads), "median": round(statistics.median(loads), 2), "max": max(loads)}


def targets(result: dict[str, Any]) -> list[tuple[bool, str]]:
    out = []
    procs = result["processes"]
    for r in GATED:
        p = procs.get(r, {})
        slope, growth = p.get("slope_mb_per_h"), p.get("growth")
        out.append((slope is not None and slope < MAX_SLOPE_MB_H,
                    f"{r} RSS slope < {MAX_SLOPE_MB_H:g} MB/h        measured "
                    + (f"{slope:+.2f} MB/h" if slope is not None else "n/a")))
        out.append((growth is not None and growth < MAX_GROWTH,
                    f"{r} RSS growth after warm-up < {MAX_GROWTH:.0%}   measured "
                    + (f"{growth:+.1%}" if growth is not None else "n/a")))
    rate, asked = result["history"].get("rate", 0.0), result["config"]["rate"]
    out.append((rate >= MIN_RATE_SHARE * asked,
                f"rate offered >= {MIN_RATE_SHARE:.0%} of {asked:g}/s       measured {rate:g}/s"))
    code = result["drill"]["exit_code"]
    out.append((code == 0, f"verdict held (exit 0)             exit {code}: "
                           f"{result['drill']['verdict'].get('reason')}"))
    return out


def print_table(result: dict[str, Any]) -> None:
    h, d = result["history"], result["drill"]
    print(f"\ndrill exit {d['exit_code']} ({d['verdict'].get('reason')}), wall {d['wall_s']:.0f}s, "
          f"load {d['load_seconds']}s")
    if h:
        print(f"operations {h['operations']:,} in {h['seconds']:.0f}s = {h['rate']:g}/s "
              f"(per minute: {h['rate_per_minute']}), errors {h['errors']:,}")
    print(f"load average during the load: {result['machine']['load1_during_load']}")
    print(f"\nRSS over the load (MB); slope and growth over the samples after "
          f"{result['config']['warmup_s']:g}s of load\n(max finish: the largest RSS after the "
          "load - merge, settle, snapshot, judge; postgres: all its processes, whose RSS\n"
          "counts the shared buffers in each: read its PSS)")
    print(f"{'process':<15}{'n':>4}{'first':>9}{'last':>9}{'max':>9}{'slope MB/h':>12}"
          f"{'growth':>9}{'PSS last':>10}{'max finish':>12}")
    for r, p in sorted(result["processes"].items(), key=lambda kv: (kv[0] not in GATED, kv[0])):
        slope = f"{p['slope_mb_per_h']:+.2f}" if p["slope_mb_per_h"] is not None else "n/a"
        growth = f"{p['growth']:+.1%}" if p["growth"] is not None else "n/a"
        pss = f"{p['pss_last_mb']:.1f}" if p["pss_last_mb"] is not None else "n/a"
        after = f"{p['max_after_load_mb']:.1f}" if p["max_after_load_mb"] else "-"  # ended
        name = r + (f" ({p['processes']})" if p["processes"] > 1 else "")
        print(f"{name:<15}{p['samples']:>4}{p['first_mb']:>9.1f}{p['last_mb']:>9.1f}"
              f"{p['max_mb']:>9.1f}{slope:>12}{growth:>9}{pss:>10}{after:>12}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--soak", help="load duration (30m, 5m, 1h)")
    parser.add_argument("--rate", type=float, default=200.0, help="operations/s offered")
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--sample", default="60s", help="seconds between samples (60s)")
    parser.add_argument("--warmup", default=None,
                        help="load time left out of the slope (default: a sixth of the soak)")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder (the run)")
    parser.add_argument("--trace", action="store_true",
                        help="tracemalloc in the runner and Locust (finding a leak; slower)")
    parser.add_argument("--out", default=None,
                        help=f"results file (default {RESULTS.relative_to(REPO)}; with "
                             "--trace, soak.json in the kept temp folder)")
    parser.add_argument("--show", metavar="FILE",
                        help="print the table and targets of a results file, run nothing")
    args = parser.parse_args(argv)
    if args.show:
        result = json.loads(Path(args.show).read_text())
        print_table(result)
        return _judge(result, trace=result["config"]["trace"])
    if not args.soak:
        parser.error("--soak is required (or --show FILE)")
    tmp = Path(tempfile.mkdtemp(prefix="faultline-soak-"))
    try:
        result = run(args, tmp)
    finally:
        if not (args.keep or args.trace):
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"kept {tmp}")
    print_table(result)
    code = _judge(result, trace=args.trace)
    out = Path(args.out or (tmp / "soak.json" if args.trace else RESULTS))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {out}")
    return code


def _judge(result: dict[str, Any], trace: bool) -> int:
    """Print the PASS/MISS lines (and keep them in ``result``); 0 when all passed."""
    checks = targets(result)
    result["targets"] = [{"met": ok, "target": text} for ok, text in checks]
    print()
    if trace:
        print("  (--trace: the RSS holds tracemalloc's own tables, which grow with every new "
              "traceback; read the trace files, not these targets)")
    for ok, text in checks:
        print(f"  {'PASS' if ok else 'MISS'}  {text}")
    return 0 if all(ok for ok, _ in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
