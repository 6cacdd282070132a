"""``faultline run | list | validate | check | report | load-worker``: the drill engine's
subcommands.

Every function returns an exit code (0 held, 1 invariant violated, 2 SLO missed, 3
steady state failed, 4 harness or scenario error, 5 vacuous: a fault never touched the
system, 130 interrupted) and prints errors, never tracebacks.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

__all__ = ["register"]

EXIT_HARNESS = 4
EXIT_INTERRUPTED = 130


def _catalogue(system: str | None) -> Path | None:
    """The scenario catalogue a system's profile ships (None when it ships none)."""
    from faultline.system import ProfileError, load_profile

    try:
        return load_profile(system).scenarios
    except ProfileError:
        return None


def _resolve(raw: list[str]) -> list[str]:
    """Paths as given; a name that is no path (``lost-ack``, ``payments:default``) is
    looked up in the catalogue of the system it names (default: payments), so that an
    installed Faultline runs its catalogue from any folder."""
    out: list[str] = []
    for item in raw:
        if Path(item).exists():
            out.append(item)
            continue
        system, _, name = item.rpartition(":") if ":" in item else ("", "", item)
        folder = _catalogue(system or None)
        found = None
        if folder is not None and name:
            for candidate in (folder / name, folder / f"{name}.yaml", folder / f"{name}.yml"):
                if candidate.exists():
                    found = str(candidate)
                    break
        out.append(found or item)
    return out


def _default_paths() -> list[str]:
    """``scenarios/`` here, else the default system's catalogue."""
    if Path("scenarios").exists():
        return ["scenarios"]
    folder = _catalogue(None)
    return [str(folder)] if folder is not None else ["scenarios"]


def _bugs(raw: str | None) -> list[str]:
    return [b.strip() for b in (raw or "").split(",") if b.strip()]


def _run(args: argparse.Namespace) -> int:
    from faultline.checks import invocation_exit_code
    from faultline.drill._pool import StackPool
    from faultline.drill._runner import DrillOptions, run_drill
    from faultline.scenario import scenario_files

    files = scenario_files(_resolve(args.scenario))
    missing = [str(p) for p in files if not p.is_file()]
    if missing or not files:
        what = ", ".join(missing) if missing else (
            f"no scenario files (*.yaml, *.yml) in {', '.join(args.scenario)}")
        print(f"faultline run: no such scenario file: {what}", file=sys.stderr)
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
    codes: list[tuple[Path, int]] = []
    pool = StackPool(reuse=len(files) > 1)
    try:
        for path in files:
            outcome = run_drill(path, DrillOptions(
                seed=args.seed, duration=args.duration,
                junit=Path(args.junit) if args.junit else None, workers=args.workers,
                master=master, bugs=_bugs(args.bugs), target=args.target,
                runs_dir=Path(args.runs_dir), profile=args.system,
                fixed_settle=args.fixed_settle), pool=pool)
            codes.append((path, outcome.exit_code))
            if outcome.exit_code == EXIT_INTERRUPTED:
                return EXIT_INTERRUPTED
    finally:
        pool.close()
    if len(files) > 1:
        print("\nfaultline: " + "  ".join(f"{p.stem}={c}" for p, c in codes), file=sys.stderr)
    return int(invocation_exit_code(c for _, c in codes))


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
    from faultline.system import ProfileError, load_profile

    def say(msg: str) -> None:
        print(f"faultline load-worker: {msg}", file=sys.stderr, flush=True)

    try:
        profile = load_profile(args.system)
    except ProfileError as exc:
        say(str(exc))
        return EXIT_HARNESS
    try:
        worker = LocustWorker(master_host=args.master_host, master_port=args.master_port,
                              locustfile=profile.workload.locustfile,
                              connect_timeout=args.connect_timeout)
        code = worker.run(say)
    except LoadError as exc:
        say(str(exc))
        return EXIT_HARNESS
    return 0 if code == 0 else EXIT_HARNESS


def _list(args: argparse.Namespace) -> int:
    from faultline.scenario import ScenarioError, load_scenario, scenario_files

    files = scenario_files(_resolve(args.paths) if args.paths else _default_paths())
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
    from faultline.scenario import scenario_files, validate_paths

    paths = _resolve(args.paths) if args.paths else _default_paths()
    files = scenario_files(paths)
    if not files:
        print(f"faultline validate: no scenario files (*.yaml, *.yml) in {', '.join(paths)}",
              file=sys.stderr)
        return EXIT_HARNESS
    missing = [str(p) for p in files if not p.is_file()]
    if missing:
        print(f"faultline validate: no such file: {', '.join(missing)}", file=sys.stderr)
        return EXIT_HARNESS
    errors = validate_paths([str(p) for p in files])
    for err in errors:
        print(str(err), file=sys.stderr)
    if not errors:
        print(f"{len(files)} scenario file(s) valid")
    return EXIT_HARNESS if errors else 0


def _stored(args: argparse.Namespace, command: str) -> tuple[Any, Any] | int:
    """The run folder and its scenario, or an exit code after saying what is wrong."""
    from faultline.drill._store import RunFolder
    from faultline.scenario import ScenarioError, load_scenario

    folder = RunFolder(Path(args.run_dir))
    if not folder.is_run():
        print(f"faultline {command}: {folder.path} is not a run directory (no "
              f"{RunFolder.SCENARIO})", file=sys.stderr)
        return EXIT_HARNESS
    try:
        return folder, load_scenario(folder.scenario)
    except ScenarioError as exc:
        print(f"faultline {command}: {exc}", file=sys.stderr)
        return EXIT_HARNESS


def _check(args: argparse.Namespace) -> int:
    from faultline.drill._judge import judge
    from faultline.report import format_summary, write_report

    got = _stored(args, "check")
    if isinstance(got, int):
        return got
    folder, scn = got
    try:
        judged = judge(folder, scn, info={"rechecked": True})
        if args.write:
            write_report(folder.path, judged.verdict, judged.run, scenario=scn,
                         alerts=judged.alerts, breaker_events=judged.breakers)
    except Exception as exc:
        print(f"faultline check: {folder.path}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_HARNESS
    print(format_summary(judged.verdict))
    return int(judged.verdict.exit_code)


def _report(args: argparse.Namespace) -> int:
    from faultline.drill._judge import judge
    from faultline.report import write_report

    got = _stored(args, "report")
    if isinstance(got, int):
        return got
    folder, scn = got
    try:
        judged = judge(folder, scn, info={"rechecked": True})
        paths = write_report(folder.path, judged.verdict, judged.run, scenario=scn,
                             alerts=judged.alerts, breaker_events=judged.breakers)
    except Exception as exc:
        print(f"faultline report: {folder.path}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_HARNESS
    for name, path in paths.items():
        print(f"{name}: {path}")
    return 0


def _init(args: argparse.Namespace) -> int:
    """Write a starter folder: the system's scenario catalogue, ready to run and edit."""
    import shutil

    folder = _catalogue(args.system)
    if folder is None:
        print(f"faultline init: system {args.system or 'payments'!r} ships no scenario "
              "catalogue", file=sys.stderr)
        return EXIT_HARNESS
    dest = Path(args.dir)
    target = dest / "scenarios"
    if target.exists():
        print(f"faultline init: {target} exists; nothing written", file=sys.stderr)
        return EXIT_HARNESS
    shutil.copytree(folder, target, ignore=shutil.ignore_patterns("__pycache__"))
    count = len(list(target.rglob("*.yaml")))
    print(f"wrote {count} scenarios to {target}")
    print(f"  faultline validate {target}")
    print(f"  faultline run {target / 'default'}        # the default drills (about a minute)")
    print(f"  faultline run {target}/<scenario>.yaml --seed N")
    return 0


def register(subparsers: Any) -> None:
    """Add ``run``, ``list``, ``validate``, ``check``, ``report`` and ``load-worker``."""
    p = subparsers.add_parser("run", help="run drills: stack, load, faults, checks, verdict")
    p.add_argument("scenario", nargs="+",
                   help="scenario YAML file(s) or folders, or catalogue names "
                        "(lost-ack, payments:default)")
    p.add_argument("--seed", type=int, default=None, help="override the scenario's seed")
    p.add_argument("--duration", default=None, help="override the load duration (90s, 2m)")
    p.add_argument("--junit", default=None, help="also write the JUnit XML here")
    p.add_argument("--workers", type=int, default=1, help="Locust processes (default 1)")
    p.add_argument("--bugs", default=None, help="deliberate bugs to switch on: a,b")
    p.add_argument("--target", choices=("local", "compose", "external"), default=None,
                   help="override the scenario's stack")
    p.add_argument("--runs-dir", default="runs", help="where run directories go (runs/)")
    p.add_argument("--system", default=None,
                   help="drill this system instead of the scenario's (a profile name or "
                        "package.module:PROFILE)")
    p.add_argument("--fixed-settle", action="store_true",
                   help="settle for the scenario's whole 'settle' time (default: stop as "
                        "soon as the system has converged)")
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
    p.add_argument("--system", default=None,
                   help="the system the drill loads (its workload; default payments)")
    p.add_argument("--connect-timeout", type=float, default=60.0, metavar="SECONDS",
                   help="give up when the master does not answer within this (default 60)")
    p.set_defaults(func=_load_worker)

    p = subparsers.add_parser("init", help="write a starter folder of scenarios to edit")
    p.add_argument("dir", nargs="?", default=".", help="where (default: here)")
    p.add_argument("--system", default=None, help="whose catalogue (default payments)")
    p.set_defaults(func=_init)

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
