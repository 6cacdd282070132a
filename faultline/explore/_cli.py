"""``faultline explore``: the command line of exploration.

Exit codes are a drill's: 0 nothing found, 1/2 the finding's verdict (``minimal.yaml``
replays it), 3/4 drills that could not be judged and nothing found, 5 every drill
vacuous, 4 also for bad arguments, an unknown bug or system, or a bad space file
(one line per problem, never a traceback), 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path
from typing import Any

__all__ = ["register"]

EXIT_HARNESS = 4


def _fail(msg: str) -> int:
    print(f"faultline explore: {msg}", file=sys.stderr)
    return EXIT_HARNESS


def _command(args: argparse.Namespace, seed: int) -> str:
    parts = ["faultline", "explore", "--seed", str(seed)]
    if args.budget is not None:
        parts += ["--budget", str(args.budget)]
    if args.time is not None:
        parts += ["--time", args.time]
    for flag, value in (("--space", args.space), ("--bugs", args.bugs),
                        ("--system", args.system), ("--junit", args.junit)):
        if value:
            parts += [flag, str(value)]
    if args.target != "local":
        parts += ["--target", args.target]
    if args.tries != 3:
        parts += ["--tries", str(args.tries)]
    return shlex.join(parts)


def _explore(args: argparse.Namespace) -> int:
    from faultline.drill import StackPool
    from faultline.scenario import parse_duration
    from faultline.stack import StackError
    from faultline.system import ProfileError, load_profile

    from ._explore import ExploreOptions, Explorer
    from ._folder import ExploreFolder
    from ._report import write_reports
    from ._space import FaultSpace
    from ._spacefile import SpaceError, load_space

    if args.budget is not None and args.budget < 1:
        return _fail("--budget must be at least 1")
    if args.tries < 1:
        return _fail("--tries must be at least 1")
    if args.shrink_runs < 0:
        return _fail("--shrink-runs must be 0 or more")
    time_limit = None
    if args.time is not None:
        try:
            time_limit = parse_duration(args.time)
        except ValueError as exc:
            return _fail(f"--time: {exc}")
        if time_limit <= 0:
            return _fail("--time must be positive")
    try:
        profile = load_profile(args.system)
    except ProfileError as exc:
        return _fail(str(exc))
    bugs = [b.strip() for b in (args.bugs or "").split(",") if b.strip()]
    unknown = sorted(set(bugs) - set(profile.bugs))
    if unknown:
        return _fail(f"unknown bug(s) {', '.join(unknown)} of system {profile.name}; known: "
                     f"{', '.join(sorted(profile.bugs)) or 'none'}")
    if args.target not in profile.targets:
        return _fail(f"system {profile.name} cannot run on {args.target!r}; it supports: "
                     f"{', '.join(profile.targets)}")
    if args.space is not None:
        try:  # before anything starts: a bad file costs nothing
            load_space(args.space, FaultSpace.from_profile(profile))
        except SpaceError as exc:
            print(f"faultline explore: invalid space file\n{exc}", file=sys.stderr)
            return EXIT_HARNESS
    seed = args.seed if args.seed is not None else int.from_bytes(os.urandom(4), "big") >> 1
    command = _command(args, seed)
    folder = ExploreFolder.create(args.runs_dir)
    opts = ExploreOptions(seed=seed, budget=args.budget if args.budget is not None else (
        None if time_limit is not None else 20), time_limit=time_limit, bugs=bugs,
        target=args.target, runs_dir=Path(args.runs_dir),
        junit=Path(args.junit) if args.junit else None, tries=args.tries,
        shrink_runs=args.shrink_runs, progress=not args.no_progress)
    print(f"faultline explore: {command}\nfaultline explore: folder {folder.path}",
          file=sys.stderr, flush=True)
    pool = StackPool(reuse=True)
    try:
        try:
            launcher, info, _ = pool.acquire(profile, args.target, bugs, folder.stack,
                                             lambda msg: print(f"faultline explore: {msg}",
                                                               file=sys.stderr))
        except StackError as exc:
            return _fail(f"the stack did not start: {exc}")
        space = FaultSpace.from_profile(profile, controls=launcher.controls,
                                        hops=list(info.hops), services=info.services)
        if args.space is not None:
            try:
                space = load_space(args.space, space)
            except SpaceError as exc:
                print(f"faultline explore: invalid space file for this stack\n{exc}",
                      file=sys.stderr)
                return EXIT_HARNESS
        pool.release(healthy=True, log=lambda msg: None)
        explorer = Explorer(profile, space, opts, folder, pool, system=args.system)
        result = explorer.run()
    finally:
        pool.close()
    paths = write_reports(result, opts, space, command)
    _summary(result, paths)
    return result.exit_code


def _summary(result: Any, paths: dict[str, Path]) -> None:
    print(f"explored {len(result.drills)} drill(s) in {result.seconds:g}s, exit "
          f"{result.exit_code}")
    if result.finding is not None:
        f = result.finding
        mini = f.minimal
        print(f"found: {f.drill.failure.describe()} in drill {f.drill.index} "
              f"({f.drill.name})")
        print(f"minimal: {f.minimal_file} ({len(mini.get('faults') or [])} fault(s), "
              f"{mini['load']['duration']:g}s of load; {f.shrink.runs} shrink runs, "
              f"{f.shrink.stopped})")
        if not f.reproduced:
            print("not reproduced on a fresh stack: minimal.yaml is the drill as drawn")
        else:
            failed, replays = f.shrink.confirmed
            print(f"confirmed: failed {failed} of {replays} replays with its seed"
                  if f.shrink.reliable else
                  f"FLAKY: failed {failed} of {replays} replays with its seed, and no larger "
                  "candidate failed in most of its replays")
        print(f"replay: {f.replay}")
    else:
        print("found: nothing")
    print(f"report: {paths['report']}")
    sys.stdout.flush()


def register(subparsers: Any) -> None:
    """Add ``explore``."""
    p = subparsers.add_parser(
        "explore", help="draw seeded random drills from the fault space, run them, shrink a "
                        "failure to a minimal scenario")
    how_long = p.add_mutually_exclusive_group()
    how_long.add_argument("--budget", type=int, default=None, metavar="N",
                          help="drills to explore (default 20)")
    how_long.add_argument("--time", default=None, metavar="DURATION",
                          help="explore for this long (20m); shrinking a finding comes on top "
                               "(at most --shrink-runs drills)")
    p.add_argument("--seed", type=int, default=None,
                   help="exploration seed: the same seed draws the same drills (default: "
                        "random, printed)")
    p.add_argument("--space", default=None, metavar="FILE",
                   help="a space file narrowing or weighting the fault space (YAML)")
    p.add_argument("--bugs", default=None, help="deliberate bugs to switch on: a,b")
    p.add_argument("--target", choices=("local", "compose", "external"), default="local",
                   help="where the stack runs (default local)")
    p.add_argument("--system", default=None,
                   help="the system to explore (a profile name or module:PROFILE; default "
                        "payments)")
    p.add_argument("--runs-dir", default="runs", help="where the explore folder goes (runs/)")
    p.add_argument("--junit", default=None, metavar="PATH", help="also write the JUnit XML here")
    p.add_argument("--tries", type=int, default=3, metavar="K",
                   help="runs of a shrink candidate before it counts as passing (default 3)")
    p.add_argument("--shrink-runs", type=int, default=40, metavar="N",
                   help="most drills shrinking may run (default 40)")
    p.add_argument("--no-progress", action="store_true", help="no live progress line")
    p.set_defaults(func=_explore)
