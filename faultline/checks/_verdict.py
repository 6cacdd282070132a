"""The verdict: checker results -> one exit code a CI pipeline can gate on."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ._result import UNKNOWN, CheckResult

__all__ = [
    "EXIT_HARNESS_ERROR",
    "EXIT_HELD",
    "EXIT_INVARIANT_VIOLATED",
    "EXIT_SLO_MISSED",
    "EXIT_STEADY_STATE_FAILED",
    "Verdict",
    "verdict",
]

EXIT_HELD = 0
EXIT_INVARIANT_VIOLATED = 1
EXIT_SLO_MISSED = 2
EXIT_STEADY_STATE_FAILED = 3
EXIT_HARNESS_ERROR = 4

_STATUS = {
    EXIT_HELD: "held",
    EXIT_INVARIANT_VIOLATED: "invariant violated",
    EXIT_SLO_MISSED: "slo missed",
    EXIT_STEADY_STATE_FAILED: "steady state failed",
    EXIT_HARNESS_ERROR: "harness error",
}


@dataclass(slots=True)
class Verdict:
    """The outcome of a drill: ``exit_code``, a one-line ``reason`` and every result."""

    exit_code: int
    status: str
    reason: str
    results: list[CheckResult] = field(default_factory=list)
    scenario: str | None = None
    seed: int | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> list[CheckResult]:
        """Results that are ``False``."""
        return [r for r in self.results if r.valid is False]

    @property
    def unknown(self) -> list[CheckResult]:
        """Results that are ``"unknown"``."""
        return [r for r in self.results if r.valid == UNKNOWN]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (``verdict.json``)."""
        return {
            "scenario": self.scenario,
            "seed": self.seed,
            "exit_code": self.exit_code,
            "status": self.status,
            "reason": self.reason,
            "results": [r.to_dict() for r in self.results],
            "info": self.info,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Verdict:
        """Rebuild a verdict stored by :meth:`to_dict`."""
        return cls(
            exit_code=int(data["exit_code"]),
            status=str(data["status"]),
            reason=str(data.get("reason", "")),
            results=[CheckResult.from_dict(r) for r in data.get("results", [])],
            scenario=data.get("scenario"),
            seed=data.get("seed"),
            info=dict(data.get("info", {})),
        )


def _names(results: Iterable[CheckResult]) -> str:
    return ", ".join(r.name for r in results)


def verdict(
    results: Iterable[CheckResult],
    *,
    steady_state_ok: bool = True,
    harness_error: str | None = None,
    expected: Iterable[str] = (),
    scenario: str | None = None,
    seed: int | None = None,
    info: Mapping[str, Any] | None = None,
) -> Verdict:
    """Decide the exit code.

    In order: a harness or scenario error -> 4; the steady state failed before the
    fault -> 3; an invariant ``False`` -> 1; an SLO ``False`` -> 2; anything
    ``unknown``, an ``expected`` check without a result, or no results at all -> 4;
    else 0. So a drill never passes on what it did not check.
    """
    results = list(results)
    extra = dict(info or {})

    def make(code: int, reason: str) -> Verdict:
        return Verdict(code, _STATUS[code], reason, results, scenario, seed, extra)

    if harness_error:
        return make(EXIT_HARNESS_ERROR, f"harness error: {harness_error}")
    if not steady_state_ok:
        return make(EXIT_STEADY_STATE_FAILED, "the stack was not healthy before the first fault")
    broken = [r for r in results if r.valid is False and r.kind != "slo"]
    if broken:
        return make(EXIT_INVARIANT_VIOLATED, f"invariant violated: {_names(broken)}")
    missed = [r for r in results if r.valid is False]
    if missed:
        return make(EXIT_SLO_MISSED, f"SLO missed: {_names(missed)}")
    unknown = [r for r in results if r.valid is not True and r.valid is not False]
    if unknown:
        return make(EXIT_HARNESS_ERROR, f"not checked (unknown): {_names(unknown)}")
    have = {r.name for r in results}
    missing = [n for n in expected if n not in have]
    if missing:
        return make(EXIT_HARNESS_ERROR, f"not checked: {', '.join(missing)}")
    if not results:
        return make(EXIT_HARNESS_ERROR, "nothing was checked")
    return make(EXIT_HELD, f"all {len(results)} checks held")
