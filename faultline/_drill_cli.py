"""``faultline run | list | validate | check | report | load-worker``: the drill engine's
subcommands.

Every function returns an exit code (0 held, 1 invariant violated, 2 SLO missed, 3
steady state failed, 4 harness or scenario error) and prints errors, never tracebacks.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["SharedStack", "register"]

EXIT_HARNESS = 4


def _scenario_files(paths: list[str]) -> list[Path]:
    out: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            out += sorted(q for q in p.rglob("*.y*ml") if q.suffix in (".yaml", ".yml")
                          and q.name != "alerts.yaml")
        else:
            out.append(p)
    return out


def _run(args: argparse.Namespace) -> int:
    from faultline._runner import DrillOptions, run_drill

    files = _scenario_files(args.scenario)
    missing = [str(p) for p in files if not p.is_file()]
    if missing or not files:
        print(f"faultline run: no such scenario file: {', '.join(missing) or args.scenario}",
              file=sys.stderr)
        return EXIT_HARNESS
    bugs = [b.strip() for b in (args.bugs or "").split(",") if b.strip()]
    if bugs:
        from payments.bugs import BUGS

        unknown = [b for b in bugs if b not in BUGS]
        if unknown:
            print(f"faultline run: unknown bug(s) {', '.join(unknown)}; known: "
                  f"{', '.join(BUGS)}", file=sys.stderr)
            return EXIT_HARNESS
    if args.junit is not None and len(files) > 1:
        print("faultline run: --junit takes one scenario (each run also writes "
              "RUN_DIR/junit.xml)", file=sys.stderr)
        return EXIT_HARNESS
    try:
        master = _master(args)
    except ValueError as exc:
        print(f"faultline run: {exc}", file=sys.stderr)
        return EXIT_HARNESS
    worst = 0
    codes: list[tuple[Path, int]] = []
    shared = SharedStack()
    try:
        for path in files:
            outcome = run_drill(path, DrillOptions(
                seed=args.seed, duration=args.duration,
                junit=Path(args.junit) if args.junit else None, workers=args.workers,
                master=master, bugs=bugs, target=args.target, runs_dir=Path(args.runs_dir)),
                stack_factory=shared if len(files) > 1 else None)
            codes.append((path, outcome.exit_code))
            if outcome.exit_code == 130:
                return 130
            if outcome.exit_code in (3, 4):
                shared.close()  # a stack that failed a drill is not trusted with the next
            # the most severe code wins: invariant (1) over SLO (2) over pass; 3/4 likewise
            worst = max(worst, outcome.exit_code, key=_severity)
    finally:
        shared.close()
    if len(files) > 1:
        print("\nfaultline: " + "  ".join(f"{p.stem}={c}" for p, c in codes), file=sys.stderr)
    return worst


def _master(args: argparse.Namespace) -> Any:
    """The :class:`~faultline.load.LocustMaster` the ``run`` flags ask for, or None;
    ValueError with the reason when they do not fit together."""
    from faultline.load import LoadError, LocustMaster

    given = [flag for flag, value in (("--expect-workers", args.expect_workers),
                                      ("--master-bind-host", args.master_bind_host),
                                      ("--master-bind-port", args.master_bind_port),
                                      ("--workers-timeout", args.workers_timeout))
             if value is not None]
    if not args.master:
        if given:
            raise ValueError(f"{', '.join(given)} only go(es) with --master")
        return None
    if args.workers > 1:
        raise ValueError("--workers runs local Locust processes; with --master the load runs "
                         "on `faultline load-worker`s (--expect-workers N)")
    chosen = {name: value for name, value in (
        ("expect_workers", args.expect_workers), ("bind_host", args.master_bind_host),
        ("bind_port", args.master_bind_port), ("workers_timeout", args.workers_timeout))
        if value is not None}
    try:
        return LocustMaster(**chosen)
    except LoadError as exc:
        raise ValueError(str(exc)) from None


def _load_worker(args: argparse.Namespace) -> int:
    from faultline.load import LoadError, LocustWorker

    def say(msg: str) -> None:
        print(f"faultline load-worker: {msg}", file=sys.stderr, flush=True)

    try:
        worker = LocustWorker(master_host=args.master_host, master_port=args.master_port,
                              connect_timeout=args.connect_timeout)
        code = worker.run(say)
    except LoadError as exc:
        say(str(exc))
        return EXIT_HARNESS
    return 0 if code == 0 else EXIT_HARNESS


class SharedStack:
    """A stack factory that starts the stack once for consecutive drills of one
    ``faultline run`` (same target and bugs): every drill still heals its faults, checks
    the steady state first and excludes the transfers before its own baseline."""

    def __init__(self, factory: Any = None) -> None:
        self.factory = factory
        self.stack: Any = None
        self.key: tuple[str, tuple[str, ...]] | None = None
        self._stop: Any = None

    def __call__(self, target: str, run_dir: Path, bugs: list[str]) -> Any:
        import dataclasses

        from faultline._drill_stack import open_stack

        key = (target, tuple(bugs))
        if self.stack is None or self.key != key:
            self.close()
            self.stack = (self.factory or open_stack)(target, run_dir, bugs)
            self.key, self._stop = key, self.stack.stop
        return dataclasses.replace(self.stack, stop=lambda: None)

    def close(self) -> None:
        stop, self.stack, self._stop = self._stop, None, None
        if stop is not None:
            try:
                stop()
            except Exception as exc:
                print(f"faultline: stopping the stack: {exc}", file=sys.stderr)


def _severity(code: int) -> int:
    return {0: 0, 2: 1, 3: 2, 4: 3, 1: 4}.get(code, 5)


def _list(args: argparse.Namespace) -> int:
    from faultline.scenario import ScenarioError, load_scenario

    files = _scenario_files(args.paths or ["scenarios"])
    bad = 0
    for path in files:
        try:
            scn = load_scenario(path)
        except ScenarioError as exc:
            bad += 1
            print(f"{path}: INVALID ({str(exc).splitlines()[0]})")
            continue
        faults = ", ".join(f.label for f in scn.faults) or "no faults"
        first = " ".join(scn.description.split())[:90]
        print(f"{path!s:45s} {scn.load.profile:6s} {scn.load.duration:5.0f}s  {faults}")
        if first:
            print(f"    {first}")
    return EXIT_HARNESS if bad else 0


def _validate(args: argparse.Namespace) -> int:
    from faultline.scenario import validate_paths

    paths = args.paths or ["scenarios"]
    files = _scenario_files(paths)
    errors = validate_paths([str(p) for p in files])
    for err in errors:
        print(str(err), file=sys.stderr)
    if not errors:
        print(f"{len(files)} scenario file(s) valid")
    return EXIT_HARNESS if errors or not files else 0


def _load_run(run_dir: Path) -> tuple[Any, list[dict[str, Any]], dict[str, Any] | None]:
    from faultline.load import read_jsonl
    from faultline.scenario import load_scenario

    scn = load_scenario(run_dir / "scenario.yaml")
    history = read_jsonl(run_dir / "history.jsonl") if (run_dir / "history.jsonl").exists() else []
    state_path = run_dir / "final_state.json"
    state = json.loads(state_path.read_text()) if state_path.exists() else None
    return scn, history, state


def _recheck(run_dir: Path) -> tuple[Any, Any, Any, list[dict[str, Any]]]:
    from faultline._runner import _stored_alerts, _stored_baseline
    from faultline.checks import CheckContext, check_slos, run_checks, verdict

    scn, history, state = _load_run(run_dir)
    alerts = _stored_alerts(run_dir)
    ctx = CheckContext(scenario=scn, baseline=_stored_baseline(run_dir), alerts=alerts)
    results = run_checks(scn.invariants, history, state, ctx) + check_slos(scn, history, ctx)
    old = json.loads((run_dir / "verdict.json").read_text()) if (run_dir / "verdict.json").exists() else {}
    steady = old.get("status") != "steady_state_failed" and old.get("exit_code") != 3
    v = verdict(results, steady_state_ok=steady, expected=scn.invariants, scenario=scn.name,
                seed=scn.seed, info={"run_dir": str(run_dir), "rechecked": True})
    return scn, v, ctx, history


def _check(args: argparse.Namespace) -> int:
    from faultline.report import format_summary, write_report

    run_dir = Path(args.run_dir)
    if not (run_dir / "scenario.yaml").is_file():
        print(f"faultline check: {run_dir} is not a run directory (no scenario.yaml)",
              file=sys.stderr)
        return EXIT_HARNESS
    try:
        scn, v, ctx, history = _recheck(run_dir)
    except Exception as exc:
        print(f"faultline check: {run_dir}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_HARNESS
    if args.write:
        write_report(run_dir, v, history, scenario=scn, alerts=ctx.alerts, context=ctx)
    print(format_summary(v))
    return int(v.exit_code)


def _report(args: argparse.Namespace) -> int:
    from faultline._runner import _stored_breakers
    from faultline.report import write_report

    run_dir = Path(args.run_dir)
    if not (run_dir / "scenario.yaml").is_file():
        print(f"faultline report: {run_dir} is not a run directory (no scenario.yaml)",
              file=sys.stderr)
        return EXIT_HARNESS
    try:
        scn, v, ctx, history = _recheck(run_dir)
        paths = write_report(run_dir, v, history, scenario=scn, alerts=ctx.alerts,
                             breaker_events=_stored_breakers(run_dir), context=ctx)
    except Exception as exc:
        print(f"faultline report: {run_dir}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_HARNESS
    for name, path in paths.items():
        print(f"{name}: {path}")
    return 0


def register(subparsers: Any) -> None:
    """Add ``run``, ``list``, ``validate``, ``check``, ``report`` and ``load-worker``."""
    p = subparsers.add_parser("run", help="run drills: stack, load, faults, checks, verdict")
    p.add_argument("scenario", nargs="+", help="scenario YAML file(s) or folders")
    p.add_argument("--seed", type=int, default=None, help="override the scenario's seed")
    p.add_argument("--duration", default=None, help="override the load duration (90s, 2m)")
    p.add_argument("--junit", default=None, help="also write the JUnit XML here")
    p.add_argument("--workers", type=int, default=1, help="Locust processes (default 1)")
    p.add_argument("--bugs", default=None, help="deliberate bugs to switch on: a,b")
    p.add_argument("--target", choices=("local", "compose", "external"), default=None,
                   help="override the scenario's stack")
    p.add_argument("--runs-dir", default="runs", help="where run directories go (runs/)")
    p.add_argument("--master", action="store_true",
                   help="run the load as a Locust master for `faultline load-worker`s on "
                        "other machines (the verdict stays here)")
    p.add_argument("--expect-workers", type=int, default=None, metavar="N",
                   help="with --master: load workers to wait for (default 1)")
    p.add_argument("--master-bind-host", default=None, metavar="HOST",
                   help="with --master: address to listen on (default 127.0.0.1; a wider one "
                        "lets anyone who reaches it join the drill unauthenticated)")
    p.add_argument("--master-bind-port", type=int, default=None, metavar="PORT",
                   help="with --master: port to listen on (default 5557)")
    p.add_argument("--workers-timeout", type=float, default=None, metavar="SECONDS",
                   help="with --master: how long to wait for the workers (default 60)")
    p.set_defaults(func=_run)

    p = subparsers.add_parser(
        "load-worker", help="on a load machine: a Locust worker for `faultline run --master`")
    p.add_argument("--master-host", required=True, help="where the drill's Locust master is")
    p.add_argument("--master-port", type=int, default=5557, help="its port (default 5557)")
    p.add_argument("--connect-timeout", type=float, default=60.0, metavar="SECONDS",
                   help="give up when the master does not answer within this (default 60)")
    p.set_defaults(func=_load_worker)

    p = subparsers.add_parser("list", help="list scenarios")
    p.add_argument("paths", nargs="*", help="files or folders (default scenarios/)")
    p.set_defaults(func=_list)

    p = subparsers.add_parser("validate", help="validate scenario files without running")
    p.add_argument("paths", nargs="*", help="files or folders (default scenarios/)")
    p.set_defaults(func=_validate)

    p = subparsers.add_parser("check", help="re-check a stored run (history + final state)")
    p.add_argument("run_dir")
    p.add_argument("--write", action="store_true", help="rewrite the run's reports")
    p.set_defaults(func=_check)

    p = subparsers.add_parser("report", help="write a stored run's reports again")
    p.add_argument("run_dir")
    p.set_defaults(func=_report)
