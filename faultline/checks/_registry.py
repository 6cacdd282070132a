"""Checkers composed by name; a crashing checker yields ``unknown``, never ``True``."""

from __future__ import annotations

import gc
import os
import pickle
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from ._result import UNKNOWN, CheckContext, CheckResult

__all__ = ["CHECKERS", "INVARIANTS", "REQUIRED_TABLES", "Checker", "checker", "run_checks"]

Checker = Callable[[Sequence[Mapping[str, Any]], Mapping[str, Any], CheckContext], CheckResult]

#: name -> checker function; filled by the ``@checker`` decorator at import
CHECKERS: dict[str, Checker] = {}

#: the invariant checkers, in the order they run when a scenario says "all"
INVARIANTS: tuple[str, ...] = (
    "conservation",
    "balanced_entries",
    "non_negative",
    "acknowledged_exactly_once",
    "idempotent_replay",
    "outbox_delivered",
    "projection_converges",
    "audit_complete",
)


def checker(name: str) -> Callable[[Checker], Checker]:
    """Register ``fn`` under ``name`` (used by every built-in checker)."""

    def register(fn: Checker) -> Checker:
        CHECKERS[name] = fn
        return fn

    return register


def _crashed(name: str, exc: BaseException) -> CheckResult:
    tb = traceback.format_exception_only(type(exc), exc)[-1].strip()
    return CheckResult(
        name=name,
        valid=UNKNOWN,
        counts={},
        errors=[{"type": "checker_crashed", "count": 1, "first": tb, "worst": tb, "last": tb}],
        message=f"checker crashed: {tb}",
    )


#: snapshot tables (contracts §5) each checker reads; absent -> ``unknown``, not valid
REQUIRED_TABLES: dict[str, tuple[str, ...]] = {
    "conservation": ("accounts", "entries"),
    "balanced_entries": ("transfers", "entries"),
    "non_negative": ("accounts",),
    "acknowledged_exactly_once": ("transfers",),
    "idempotent_replay": ("idempotency",),
    "outbox_delivered": ("transfers", "outbox", "stream", "processed_events"),
    "projection_converges": ("accounts", "projections"),
    "audit_complete": ("transfers", "audit"),
}

#: checkers that share one derived index run in the same process (and their rough cost)
_FAMILIES: dict[str, tuple[str, float]] = {
    "acknowledged_exactly_once": ("history", 3.0),
    "idempotent_replay": ("history", 0.5),
    "conservation": ("entries", 1.2),
    "balanced_entries": ("entries", 1.0),
    "outbox_delivered": ("outbox", 1.0),
    "audit_complete": ("audit", 2.0),
}


def _run_one(
    name: str,
    history: Sequence[Mapping[str, Any]],
    state: Mapping[str, Any] | None,
    ctx: CheckContext,
) -> CheckResult:
    fn = CHECKERS.get(name)
    if fn is None:
        return CheckResult(name=name, valid=UNKNOWN, message=f"no checker named {name!r}")
    if state is None:
        return CheckResult(name=name, valid=UNKNOWN, message="no final-state snapshot")
    missing = [t for t in REQUIRED_TABLES.get(name, ()) if t not in state]
    if missing:
        return CheckResult(
            name=name,
            valid=UNKNOWN,
            message=f"the snapshot has no {', '.join(missing)} table: not checked",
        )
    try:
        return fn(history, state, ctx)
    except Exception as exc:  # a broken checker must not pass the drill
        return _crashed(name, exc)


def _split(names: list[str], workers: int) -> list[list[str]]:
    """Group checkers into ``workers`` bins; bin 0 holds the history family (it
    stays in the calling process, whose cache the SLO checks then reuse)."""
    families: dict[str, list[str]] = {}
    cost: dict[str, float] = {}
    for name in names:
        family, c = _FAMILIES.get(name, (name, 0.1))
        families.setdefault(family, []).append(name)
        cost[family] = cost.get(family, 0.0) + c
    bins: list[list[str]] = [[] for _ in range(workers)]
    load = [0.0] * workers
    order = sorted(families, key=lambda f: (f != "history", -cost[f]))
    for family in order:
        i = 0 if family == "history" else min(range(workers), key=load.__getitem__)
        bins[i].extend(families[family])
        load[i] += cost[family]
    return [b for i, b in enumerate(bins) if b or i == 0]


def _run_forked(
    groups: list[list[str]],
    history: Sequence[Mapping[str, Any]],
    state: Mapping[str, Any] | None,
    ctx: CheckContext,
) -> dict[str, CheckResult]:
    """Run ``groups[1:]`` in forked children, ``groups[0]`` here; collect by name.

    The children only read what the parent already holds (copy-on-write) and send
    back pickled results; a child that dies yields ``unknown`` for its checkers.
    """
    children: list[tuple[int, int, list[str]]] = []
    gc.freeze()  # keep the children's collector from touching (copying) every page
    try:
        for group in groups[1:]:
            read_fd, write_fd = os.pipe()
            pid = os.fork()
            if pid == 0:  # child
                code = 0
                try:
                    os.close(read_fd)
                    payload = pickle.dumps([_run_one(n, history, state, ctx) for n in group])
                    with os.fdopen(write_fd, "wb") as out:
                        out.write(payload)
                except BaseException:
                    code = 1
                finally:
                    os._exit(code)
            os.close(write_fd)
            children.append((pid, read_fd, group))
    finally:
        gc.unfreeze()
    results = {n: _run_one(n, history, state, ctx) for n in groups[0]}
    for pid, read_fd, group in children:
        with os.fdopen(read_fd, "rb") as inp:
            payload = inp.read()
        os.waitpid(pid, 0)
        try:
            got = {r.name: r for r in pickle.loads(payload)} if payload else {}
        except Exception:
            got = {}
        for name in group:
            results[name] = got.get(name) or CheckResult(
                name=name, valid=UNKNOWN, message="checker process died"
            )
    return results


def run_checks(
    names: Iterable[str] | None,
    history: Sequence[Mapping[str, Any]],
    state: Mapping[str, Any] | None,
    context: CheckContext | None = None,
    *,
    workers: int = 1,
) -> list[CheckResult]:
    """Run the named checkers (``None`` or ``["all"]`` = every invariant).

    An unknown name, a missing final state or a checker that raises each give a
    result with ``valid == "unknown"`` — so the verdict can never be 0 by omission.
    ``workers > 1`` runs independent checker families in forked processes (POSIX;
    worth it from about a hundred thousand operations); results are identical.
    """
    wanted = list(INVARIANTS) if names is None else list(names)
    if "all" in wanted:
        wanted = [n for n in wanted if n != "all"] + [n for n in INVARIANTS if n not in wanted]
    ctx = context if context is not None else CheckContext()
    if workers > 1 and hasattr(os, "fork") and state is not None and len(wanted) > 1:
        groups = _split(wanted, workers)
        if len(groups) > 1:
            by_name = _run_forked(groups, history, state, ctx)
            return [by_name[n] for n in wanted]
    return [_run_one(name, history, state, ctx) for name in wanted]
