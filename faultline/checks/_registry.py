"""Checkers composed by name; a crashing checker yields ``unknown``, never ``True``."""

from __future__ import annotations

import traceback
from collections.abc import Callable, Iterable
from typing import Any

from ._result import UNKNOWN, CheckContext, CheckResult

__all__ = ["CHECKERS", "ERROR_KINDS", "INVARIANTS", "REQUIRED_TABLES", "Checker", "checker",
           "run_checks"]

#: ``(history, state, ctx) -> CheckResult``; history is a list of dicts or a record source,
#: state a snapshot dict or a ``StateSource`` (the built-in checkers take either)
Checker = Callable[[Any, Any, CheckContext], CheckResult]

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


#: every error ``type`` each invariant checker can report (docs/checks.md explains each;
#: a test makes each one fire, and fails on a type not listed here); any checker can
#: also be ``unknown`` with ``checker_crashed``
ERROR_KINDS: dict[str, tuple[str, ...]] = {
    "conservation": ("balance_entries_mismatch", "currency_not_conserved", "inflow_mismatch"),
    "balanced_entries": ("missing_entries", "entries_of_uncommitted_transfer", "orphan_entries",
                         "currency_mismatch", "unbalanced_entries"),
    "non_negative": ("negative_balance",),
    "acknowledged_exactly_once": ("lost_ok", "double_charge", "info_applied_twice",
                                  "failed_but_applied", "transfer_without_invoke"),
    "idempotent_replay": ("different_body_accepted", "replay_mismatch", "stored_response_mismatch"),
    "outbox_delivered": ("missing_outbox_event", "duplicate_outbox_event", "unpublished_event",
                         "event_not_in_stream", "dead_letter", "event_not_applied"),
    "projection_converges": ("projection_drift", "projection_of_unknown_account"),
    "audit_complete": ("audit_gap", "broken_chain", "tampered_audit_row", "missing_audit"),
}


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

def _run_one(name: str, history: Any, state: Any, ctx: CheckContext) -> CheckResult:
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


def run_checks(
    names: Iterable[str] | None,
    history: Any,
    state: Any,
    context: CheckContext | None = None,
) -> list[CheckResult]:
    """Run the named checkers (``None`` or ``["all"]`` = every invariant).

    An unknown name, a missing final state or a checker that raises each give a
    result with ``valid == "unknown"`` — so the verdict can never be 0 by omission.
    Checkers of one call share derived indexes through ``context.cache``.
    """
    wanted = list(INVARIANTS) if names is None else list(names)
    if "all" in wanted:
        wanted = [n for n in wanted if n != "all"] + [n for n in INVARIANTS if n not in wanted]
    ctx = context if context is not None else CheckContext()
    return [_run_one(name, history, state, ctx) for name in wanted]
