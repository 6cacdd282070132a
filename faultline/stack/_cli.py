"""``faultline stack up|status|down``.

``up`` starts a system's local stack (``--system``, default payments) and keeps it until
Ctrl-C or SIGTERM, then stops everything. ``up --detach`` runs that same foreground
``up`` as a background supervisor process (its own session) and returns once the stack
is ready; ``status`` lists the running stacks from their state files and ``down`` asks
each supervisor to stop (SIGTERM), then sweeps whatever is left.

``status`` and ``down`` only see the stacks started from this working directory (one
checkout's stacks are not another's business); ``--all`` widens them to every stack of
this user, a stack id narrows them to one.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["register"]

#: seconds `up --detach` waits for the supervisor to report the stack ready
DETACH_TIMEOUT = 300.0


def register(subparsers: Any) -> None:
    """Add ``stack`` and its ``up``, ``status`` and ``down`` subcommands."""
    stack = subparsers.add_parser("stack", help="start, inspect or stop a system's local stack",
                                  description="A system's local stack (every hop through "
                                  "the fault proxy).")
    stack.set_defaults(func=lambda args: _usage(stack))
    sub = stack.add_subparsers(dest="stack_command", metavar="COMMAND")

    up = sub.add_parser("up", help="start the stack (until Ctrl-C, or in the background)")
    up.add_argument("--detach", action="store_true",
                    help="leave it running in the background; `faultline stack down` stops it")
    up.add_argument("--run-dir", help="logs, stack.json, proxy events (default runs/stack-<time>)")
    up.add_argument("--system", default=None, help="the system (its profile; default payments)")
    up.add_argument("--bugs", default="", help="comma list of the system's deliberate bugs")
    up.add_argument("--ready-file", help=argparse.SUPPRESS)
    up.set_defaults(func=_up)

    status = sub.add_parser("status", help="list the running stacks of this directory")
    status.add_argument("stack_id", nargs="?", help="only this stack")
    status.add_argument("--all", action="store_true", help="every stack of this user")
    status.set_defaults(func=_status)
    down = sub.add_parser("down", help="stop this directory's detached stacks and sweep "
                                       "leftovers of killed ones")
    down.add_argument("stack_id", nargs="?", help="only this stack")
    down.add_argument("--all", action="store_true", help="every stack of this user")
    down.add_argument("--timeout", type=float, default=60.0,
                      help="seconds to wait for an orderly stop before killing")
    down.set_defaults(func=_down)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 4


def _err(msg: str) -> int:
    print(f"faultline stack: {msg}", file=sys.stderr)
    return 4


def _say(msg: str) -> None:
    print(f"faultline stack: {msg}", file=sys.stderr, flush=True)


def _print_info(info: dict[str, Any]) -> None:
    print(f"system    {info.get('system')}")
    print(f"base url  {info.get('base_url')}")
    print(f"proxy     {info.get('proxy_url')}")
    for name, url in sorted((info.get("endpoints") or {}).items()):
        print(f"{name:<9} {url}")
    print(f"run dir   {info.get('run_dir')}")
    for name, pid in sorted((info.get("pids") or {}).items()):
        print(f"  {name:<9} pid {pid}")
    sys.stdout.flush()


def _default_run_dir() -> Path:
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%S")
    return Path("runs") / f"stack-{stamp}"


def _up(args: argparse.Namespace) -> int:
    run_dir = Path(args.run_dir) if args.run_dir else _default_run_dir()
    bugs = [b.strip() for b in args.bugs.split(",") if b.strip()]
    if args.detach:
        return _up_detached(args, run_dir)
    from faultline.stack._launcher import StackError
    from faultline.stack._local import LocalStack, StackInterrupted, stop_on_signals, write_private
    from faultline.system import ProfileError, load_profile

    try:
        stack = load_profile(args.system).launcher("local", run_dir=run_dir.resolve(),
                                                   bugs=bugs)
    except (ProfileError, StackError) as exc:
        return _err(str(exc))
    if not isinstance(stack, LocalStack):
        return _err("this system's local launcher cannot run as a detached stack")
    stack.state.detached = bool(args.ready_file)
    stack.log = _say
    try:
        with stop_on_signals():
            try:
                info = stack.start()
                _print_info(info.to_dict())
                if args.ready_file:  # it holds the workload's API keys
                    write_private(Path(args.ready_file), json.dumps(info.to_dict()))
                else:
                    _say(f"up in {stack.startup_seconds:.1f}s; Ctrl-C stops it")
                while True:
                    time.sleep(3600)
            except (KeyboardInterrupt, StackInterrupted):
                _say("stopping")
                return 0
            except StackError as exc:
                return _err(str(exc))
            except Exception as exc:
                return _err(f"{type(exc).__name__}: {exc}")
            finally:
                stack.stop()
    except (KeyboardInterrupt, StackInterrupted):  # a second Ctrl-C during the stop
        return 130


def _up_detached(args: argparse.Namespace, run_dir: Path) -> int:
    run_dir.mkdir(parents=True, exist_ok=True)
    ready = run_dir / "stack-ready.json"
    ready.unlink(missing_ok=True)
    argv = [sys.executable, "-m", "faultline", "stack", "up", "--run-dir", str(run_dir),
            "--ready-file", str(ready)]
    if args.bugs:
        argv += ["--bugs", args.bugs]
    if args.system:
        argv += ["--system", args.system]
    log_path = run_dir / "supervisor.log"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + DETACH_TIMEOUT
    while not ready.exists():
        if proc.poll() is not None:
            tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-20:])
            return _err(f"the stack did not start (exit {proc.returncode}); {log_path}:\n{tail}")
        if time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGTERM)
            return _err(f"the stack was not ready after {DETACH_TIMEOUT:.0f}s; see {log_path}")
        time.sleep(0.2)
    _print_info(json.loads(ready.read_text()))
    print(f"supervisor pid {proc.pid}; stop with: faultline stack down")
    return 0


def _mine(args: argparse.Namespace) -> list[Any]:
    """The stacks ``status``/``down`` act on: this directory's, one id's, or all."""
    from faultline.stack._state import StackState

    states = StackState.all()
    if args.stack_id:
        return [st for st in states if st.id == args.stack_id]
    if args.all:
        return states
    here = str(Path.cwd().resolve())
    return [st for st in states if st.workdir == here]


def _status(args: argparse.Namespace) -> int:
    states = _mine(args)
    if not states:
        print("no stack running" + ("" if args.all or args.stack_id else
                                    " from this directory (--all shows every stack)"))
        return 0
    for st in states:
        alive = st.owner_alive()
        kind = "detached" if st.detached else "owned"
        state = "running" if alive and st.info else ("starting" if alive else "owner dead")
        print(f"stack {st.id}  {state}  ({kind}, owner pid {st.owner_pid})")
        if st.info:
            _print_info(st.info)
        elif st.run_dir:
            print(f"run dir   {st.run_dir}")
    return 0


def _down(args: argparse.Namespace) -> int:
    from faultline.stack._state import process_alive, sweep

    stopped = 0
    for st in _mine(args):
        if not (st.detached and st.owner_alive()):
            continue
        os.kill(st.owner_pid, signal.SIGTERM)
        deadline = time.monotonic() + args.timeout
        while process_alive(st.owner_pid, st.owner_start) and time.monotonic() < deadline:
            time.sleep(0.2)
        if process_alive(st.owner_pid, st.owner_start):
            os.kill(st.owner_pid, signal.SIGKILL)
            time.sleep(0.5)
        stopped += 1
        print(f"stopped stack {st.id} (supervisor pid {st.owner_pid})")
    for line in sweep():
        print(f"swept {line}")
    from faultline.drill._registry import RunRegistry

    for line in RunRegistry(Path("runs") / ".active").sweep():
        print(f"swept a killed run: {line}")
    if not stopped:
        print("no detached stack was running" + ("" if args.all or args.stack_id else
                                                 " from this directory (--all: every stack)"))
    return 0
