"""``faultline stack up|status|down``.

``up`` starts the local stack and keeps it until Ctrl-C or SIGTERM, then stops
everything. ``up --detach`` runs that same foreground ``up`` as a background supervisor
process (its own session) and returns once the stack is ready; ``status`` lists the
running stacks from their state files and ``down`` asks each supervisor to stop (SIGTERM),
then sweeps whatever is left.
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
    stack = subparsers.add_parser("stack", help="start, inspect or stop the local payment stack",
                                  description="The local payment stack (every hop through "
                                  "the fault proxy).")
    stack.set_defaults(func=lambda args: _usage(stack))
    sub = stack.add_subparsers(dest="stack_command", metavar="COMMAND")

    up = sub.add_parser("up", help="start the stack (until Ctrl-C, or in the background)")
    up.add_argument("--detach", action="store_true",
                    help="leave it running in the background; `faultline stack down` stops it")
    up.add_argument("--run-dir", help="logs, stack.json, proxy events (default runs/stack-<time>)")
    up.add_argument("--bugs", default="", help="comma list of deliberate bugs (PAYMENTS_BUGS)")
    up.add_argument("--no-replica", action="store_true", help="no read replica")
    up.add_argument("--ready-file", help=argparse.SUPPRESS)
    up.set_defaults(func=_up)

    sub.add_parser("status", help="list running stacks").set_defaults(func=_status)
    down = sub.add_parser("down", help="stop detached stacks and sweep leftovers of killed ones")
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
    print(f"api       {info.get('api_url')}")
    print(f"database  {info.get('database_url')}")
    print(f"replica   {info.get('replica_url')}")
    print(f"redis     {info.get('redis_url')}")
    print(f"proxy     {info.get('proxy_url')}")
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
    from faultline.stack._local import LocalStack, StackInterrupted, stop_on_signals

    stack = LocalStack(run_dir=run_dir, bugs=bugs, replica=not args.no_replica,
                       detached=bool(args.ready_file), log=_say)
    try:
        with stop_on_signals():
            try:
                info = stack.start()
                _print_info(info.to_dict())
                if args.ready_file:
                    Path(args.ready_file).write_text(json.dumps(info.to_dict()))
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
    if args.no_replica:
        argv.append("--no-replica")
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


def _status(args: argparse.Namespace) -> int:
    from faultline.stack._state import StackState

    states = StackState.all()
    if not states:
        print("no stack running")
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
    from faultline.stack._state import StackState, process_alive, sweep

    stopped = 0
    for st in StackState.all():
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
    if not stopped:
        print("no detached stack was running")
    return 0
