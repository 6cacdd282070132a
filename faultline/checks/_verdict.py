"""The verdict: checker results -> one exit code a CI pipeline can gate on.

Precedence, highest first (the first that applies decides)::

    HARNESS_ERROR        4  the harness failed or the scenario was invalid
    INVARIANT_VIOLATED   1  an invariant is False: after the drill, or already in the
                            steady-state probe (a violation is a violation in every phase)
    STEADY_STATE_FAILED  3  the stack was not healthy before the first fault
    SLO_MISSED           2  an SLO, recovery deadline or expected alert is False
    HARNESS_ERROR        4  something was not checked (unknown, expected but absent, none)
    VACUOUS              5  a fault that should have touched the system never did
    HELD                 0  everything checked held

So a drill never passes on what it did not check, and a drill whose faults did nothing
proves nothing. :func:`invocation_exit_code` folds the codes of several drills by the
same order (a bare code 4 cannot tell its two causes apart, so it ranks first).
"""

from __future__ import annotations

import enum
import json
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
    "EXIT_VACUOUS",
    "ExitCode",
    "Verdict",
    "invocation_exit_code",
    "vacuous_faults",
    "verdict",
]


class ExitCode(enum.IntEnum):
    """The exit codes of a drill (DESIGN.md, "Exit codes of a verdict")."""

    HELD = 0
    INVARIANT_VIOLATED = 1
    SLO_MISSED = 2
    STEADY_STATE_FAILED = 3
    HARNESS_ERROR = 4
    VACUOUS = 5

    @property
    def status(self) -> str:
        """The ``status`` string of ``verdict.json``."""
        return _STATUS[self]


_STATUS = {
    ExitCode.HELD: "held",
    ExitCode.INVARIANT_VIOLATED: "invariant violated",
    ExitCode.SLO_MISSED: "slo missed",
    ExitCode.STEADY_STATE_FAILED: "steady state failed",
    ExitCode.HARNESS_ERROR: "harness error",
    ExitCode.VACUOUS: "vacuous",
}

#: aliases kept while callers move to :class:`ExitCode`
EXIT_HELD = ExitCode.HELD
EXIT_INVARIANT_VIOLATED = ExitCode.INVARIANT_VIOLATED
EXIT_SLO_MISSED = ExitCode.SLO_MISSED
EXIT_STEADY_STATE_FAILED = ExitCode.STEADY_STATE_FAILED
EXIT_HARNESS_ERROR = ExitCode.HARNESS_ERROR
EXIT_VACUOUS = ExitCode.VACUOUS

#: exit codes from the one that wins to the one that loses (module docstring)
_PRECEDENCE = (
    ExitCode.HARNESS_ERROR,
    ExitCode.INVARIANT_VIOLATED,
    ExitCode.STEADY_STATE_FAILED,
    ExitCode.SLO_MISSED,
    ExitCode.VACUOUS,
    ExitCode.HELD,
)


def invocation_exit_code(codes: Iterable[int]) -> ExitCode:
    """The exit code of one invocation that ran several drills.

    The codes are ranked as in the verdict's precedence; a code outside
    :class:`ExitCode` counts as a harness error, and no drill at all is one too
    (nothing was checked).
    """
    seen = [ExitCode(c) if c in ExitCode._value2member_map_ else ExitCode.HARNESS_ERROR
            for c in codes]
    if not seen:
        return ExitCode.HARNESS_ERROR
    return min(seen, key=_PRECEDENCE.index)


def _touched(effect: Any) -> bool:
    """Did an effect record count anything? (nested mappings are walked)"""
    if isinstance(effect, Mapping):
        return any(_touched(v) for v in effect.values())
    if isinstance(effect, bool):
        return effect
    return isinstance(effect, int | float) and effect > 0


def vacuous_faults(faults: Iterable[Mapping[str, Any]]) -> list[str]:
    """Names of the faults that expected an effect and show none.

    An effect is the fault's counters (``{"connections_cut": 0, ...}``); all zero,
    absent or not a mapping (unknown) means the fault never touched the system.
    """
    return [_fault_name(f, i) for i, f in _idle(list(faults))]


def _idle(faults: list[Mapping[str, Any]]) -> list[tuple[int, Mapping[str, Any]]]:
    return [(i, f) for i, f in enumerate(faults)
            if f.get("expect_effect", True) and not _touched(f.get("effect"))]


def _fault_name(fault: Mapping[str, Any], index: int) -> str:
    return str(fault.get("name") or f"fault {index}")


def _idle_labels(faults: list[Mapping[str, Any]]) -> list[str]:
    """The idle faults for the verdict's reason, each with its own status, and its start
    when another fault has the same name (a flapping hop is cut three times: which cut
    touched nothing?)."""
    names = [_fault_name(f, i) for i, f in enumerate(faults)]
    out = []
    for i, fault in _idle(faults):
        label = names[i]
        if names.count(label) > 1:
            start = fault.get("start_s")
            label += f" at {float(start):.1f}s" if start is not None else f" (fault {i})"
        if fault.get("status"):
            label += f" ({str(fault['status']).replace('_', ' ')})"
        out.append(label)
    return out


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


@dataclass(slots=True)
class Verdict:
    """The outcome of a drill: ``exit_code``, a one-line ``reason`` and every result.

    ``steady_state`` holds the invariant results of the steady-state probe (taken
    before the first fault); ``faults`` the drill's faults with their effects.
    """

    exit_code: int
    status: str
    reason: str
    results: list[CheckResult] = field(default_factory=list)
    scenario: str | None = None
    seed: int | None = None
    info: dict[str, Any] = field(default_factory=dict)
    faults: list[dict[str, Any]] = field(default_factory=list)
    steady_state: list[CheckResult] = field(default_factory=list)

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
            "exit_code": int(self.exit_code),
            "status": self.status,
            "reason": self.reason,
            "faults": self.faults,
            "results": [r.to_dict() for r in self.results],
            "steady_state": [r.to_dict() for r in self.steady_state],
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
            faults=[dict(f) for f in data.get("faults", [])],
            steady_state=[CheckResult.from_dict(r) for r in data.get("steady_state", [])],
        )


def _names(results: Iterable[CheckResult]) -> str:
    return ", ".join(r.name for r in results)


def verdict(
    results: Iterable[CheckResult],
    *,
    steady_state_ok: bool = True,
    steady_state_results: Iterable[CheckResult] = (),
    harness_error: str | None = None,
    expected: Iterable[str] = (),
    faults: Iterable[Mapping[str, Any]] | None = None,
    scenario: str | None = None,
    seed: int | None = None,
    info: Mapping[str, Any] | None = None,
) -> Verdict:
    """Decide the exit code by the precedence of the module docstring.

    ``steady_state_results`` are the invariant results of the steady-state probe (a
    False one is exit 1, as after the drill). ``faults`` are the drill's faults as
    ``{"name", "effect": {counter: n}, "expect_effect": bool}``; one that expects an
    effect and counted none makes an otherwise held drill ``vacuous`` (5).
    """
    results = list(results)
    probe = list(steady_state_results)
    fault_list = [_jsonable(dict(f)) for f in faults or ()]
    extra = dict(info or {})

    def make(code: ExitCode, reason: str) -> Verdict:
        return Verdict(int(code), code.status, reason, results, scenario, seed, extra,
                       fault_list, probe)

    if harness_error:
        return make(ExitCode.HARNESS_ERROR, f"harness error: {harness_error}")
    broken = [r for r in results if r.valid is False and r.kind != "slo"]
    broken_before = [r for r in probe if r.valid is False and r.kind != "slo"]
    if broken:
        return make(ExitCode.INVARIANT_VIOLATED, f"invariant violated: {_names(broken)}")
    if broken_before:
        return make(
            ExitCode.INVARIANT_VIOLATED,
            f"invariant violated in the steady-state probe: {_names(broken_before)}",
        )
    if not steady_state_ok:
        return make(ExitCode.STEADY_STATE_FAILED, "the stack was not healthy before the first fault")
    missed = [r for r in results if r.valid is False]
    if missed:
        return make(ExitCode.SLO_MISSED, f"SLO missed: {_names(missed)}")
    unknown = [r for r in results if r.valid is not True and r.valid is not False]
    if unknown:
        return make(ExitCode.HARNESS_ERROR, f"not checked (unknown): {_names(unknown)}")
    have = {r.name for r in results}
    missing = [n for n in expected if n not in have]
    if missing:
        return make(ExitCode.HARNESS_ERROR, f"not checked: {', '.join(missing)}")
    if not results:
        return make(ExitCode.HARNESS_ERROR, "nothing was checked")
    idle = _idle_labels(list(fault_list))
    if idle:
        # with the engine's status of each fault when it gave one (no effect, skipped...)
        return make(ExitCode.VACUOUS, f"vacuous: a fault never touched the system: {', '.join(idle)}")
    return make(ExitCode.HELD, f"all {len(results)} checks held")
