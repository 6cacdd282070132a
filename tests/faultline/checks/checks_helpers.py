"""Helpers shared by the checker tests: a small consistent synthetic run to plant bugs in,
one checker run, and the error record a planted bug must produce."""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

from faultline.checks import CheckContext, CheckResult, run_checks
from faultline.checks.synthetic import SyntheticRun, synthetic_run


@cache
def _pristine() -> SyntheticRun:
    return synthetic_run(600, seed=3, accounts=20)


def fresh_run() -> SyntheticRun:
    """A fresh deep copy of the small synthetic run: tests plant bugs in it."""
    return copy.deepcopy(_pristine())


def check(name: str, run: SyntheticRun, context: CheckContext | None = None) -> CheckResult:
    [result] = run_checks([name], run.history, run.state, context)
    return result


def error(result: CheckResult, type_: str) -> dict[str, Any]:
    assert result.valid is False, result
    by_type = {e["type"]: e for e in result.errors}
    assert type_ in by_type, f"expected {type_}, got {list(by_type)}"
    rec = by_type[type_]
    assert {"type", "count", "first", "worst", "last"} <= set(rec)
    return rec
