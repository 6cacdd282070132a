"""What "the same failure" means when a drill is shrunk.

A drill fails (exit 1 or 2) when a checker finds a violation. Shrinking keeps a smaller
candidate only if it fails *the same way*, or it would slip from one bug to another
(Hypothesis calls it slippage): a drill whose double charge came from a lost reply may
shrink into one that shows a lost write instead, and the minimal scenario would no
longer explain the first failure.

Same failure, here: the candidate's verdict has the **same checker** ``False`` — the
first violated invariant of the original in the verdict's order, or its first missed
SLO when no invariant broke — **with at least one error of the same kind** (the
checker's typed error records: ``lost_ok``, ``double_charge``, ``missing_outbox_event``,
...). Other checkers may fail too: a candidate may fail more, never differently. A
violation found in the steady-state probe counts as the same checker (the name's
``(steady state)`` suffix is dropped). Results without error kinds (SLOs) match by
checker alone.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

__all__ = ["FAILING_CODES", "STEADY", "Failure"]

#: the verdicts exploration hunts (invariant violated, SLO missed); 3/4/5 are no finding
FAILING_CODES = frozenset({1, 2})
#: the suffix of a result of the steady-state probe (before any fault)
STEADY = " (steady state)"


def _checker(name: str) -> str:
    return name.removesuffix(STEADY)


@dataclass(frozen=True, slots=True)
class Failure:
    """One failing verdict reduced to what shrinking must keep."""

    exit_code: int
    #: the checker whose violation defines the failure
    checker: str
    #: every checker that failed, with its error kinds (in the verdict's order)
    failed: tuple[tuple[str, frozenset[str]], ...]
    #: the first error record of ``checker`` (reports: what the violation looked like)
    example: dict[str, Any] | None = None
    #: ``checker`` failed in the steady-state probe, before any fault was injected
    steady: bool = False

    @classmethod
    def of(cls, exit_code: int, results: Iterable[Any]) -> Failure | None:
        """The failure of a verdict (``exit_code`` and its ``CheckResult``s or their
        dicts), or ``None`` when it is not a finding (exit 0, 3, 4, 5)."""
        if exit_code not in FAILING_CODES:
            return None
        rows = [r if isinstance(r, dict) else r.to_dict() for r in results]
        broken = [r for r in rows if r.get("valid") is False]
        if not broken:
            return None
        failed: dict[str, frozenset[str]] = {}
        for r in broken:
            name = _checker(str(r["name"]))
            kinds = frozenset(str(e["type"]) for e in r.get("errors") or [] if e.get("type"))
            failed[name] = failed.get(name, frozenset()) | kinds
        invariants = [r for r in broken if r.get("kind") != "slo"]
        first = (invariants or broken)[0]
        errors = list(first.get("errors") or [])
        checker = _checker(str(first["name"]))
        steady = all(str(r["name"]).endswith(STEADY) for r in broken
                     if _checker(str(r["name"])) == checker)
        return cls(exit_code=exit_code, checker=checker, failed=tuple(failed.items()),
                   example=errors[0] if errors else None, steady=steady)

    @property
    def kinds(self) -> frozenset[str]:
        """The error kinds of :attr:`checker`."""
        return dict(self.failed).get(self.checker, frozenset())

    @property
    def checkers(self) -> list[str]:
        return [name for name, _ in self.failed]

    def reproduced_by(self, other: Failure | None) -> bool:
        """Does ``other`` (a candidate's failure) show this failure: our checker
        ``False`` with an error kind in common (or no kinds on either side)?"""
        if other is None:
            return False
        theirs = dict(other.failed)
        if self.checker not in theirs:
            return False
        return not self.kinds or not theirs[self.checker] or bool(self.kinds
                                                                  & theirs[self.checker])

    def describe(self) -> str:
        kinds = f" ({', '.join(sorted(self.kinds))})" if self.kinds else ""
        return f"{self.checker}{kinds}"

    def to_json(self) -> dict[str, Any]:
        return {"exit_code": self.exit_code, "checker": self.checker,
                "kinds": sorted(self.kinds),
                "failed": {name: sorted(kinds) for name, kinds in self.failed},
                "example": self.example, "steady_state": self.steady}
