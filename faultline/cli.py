"""``faultline`` command line: one entry point, subcommands registered by each part.

Each part owns a module exposing ``register(subparsers)`` that adds its subcommand(s)
and sets ``func`` (returning an exit code) on its parsers. Imports are lazy so that
``faultline proxy serve`` does not pay for Locust or pydantic.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

__all__ = ["main"]

# module path -> the subcommands it registers (for lazy import by first argument)
_PARTS: dict[str, tuple[str, ...]] = {
    "faultline.proxy._cli": ("proxy",),
    "faultline.stack._cli": ("stack",),
    "faultline.drill._cli": ("run", "init", "list", "validate", "check", "report",
                             "load-worker"),
    "faultline.explore._cli": ("explore",),
}


def _build_parser(only: str | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="faultline",
        description="Chaos drills for payment systems: load, faults, invariants, verdict.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name, commands in _PARTS.items():
        if only is not None and only not in commands:
            continue
        importlib.import_module(module_name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code (4 for usage/harness errors)."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    first = next((a for a in args_list if not a.startswith("-")), None)
    known = {c for cmds in _PARTS.values() for c in cmds}
    parser = _build_parser(first if first in known else None)
    try:
        args = parser.parse_args(args_list)
    except SystemExit as exc:
        return 4 if exc.code not in (0, None) else 0
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 4
    try:
        return int(func(args))
    except BrokenPipeError:  # `faultline list | head`: the reader left, nothing to say
        return 0
    except KeyboardInterrupt:  # Ctrl-C outside a drill (a drill reports its own)
        print("faultline: interrupted (exit 130)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
