"""Invariant and SLO checkers: pure functions of (history, final state, context).

API summary (for the drill runner)::

    from faultline.checks import (
        CheckContext, run_checks, check_slos, verdict, INVARIANTS,
        fault_windows_from_history, timeseries, phase_stats,
    )
    ctx = CheckContext(scenario=scn, baseline=baseline_snapshot_or_None,
                       alerts=alert_events_or_None)   # fault windows: from history
    results = run_checks(scn.invariants, history, final_state, ctx)   # list[CheckResult]
    results += check_slos(scn, history, ctx)                          # kind == "slo"
    v = verdict(results, steady_state_ok=True, harness_error=None,
                expected=scn.invariants, scenario=scn.name, seed=scn.seed)
    sys.exit(v.exit_code)   # 0 held, 1 invariant, 2 SLO, 3 steady state, 4 harness/unknown

- ``history``: list of dicts, docs/contracts.md §6 (nemesis ``start``/``stop`` lines
  should carry ``value.index`` = the fault's position in ``scenario.faults``).
- ``final_state``: the snapshot dict of §5. ``None`` -> every invariant ``unknown``.
- ``CheckResult``: ``name, kind, valid (True|False|"unknown"), counts,
  errors [{type, count, first, worst, last}], evidence {"history": [line], "rows":
  {table: [ids]}}, message``; ``.to_dict()``.
- A checker that raises gives ``unknown`` (``checker_crashed``); the verdict is then 4
  unless an invariant or SLO already failed.

Checkers (``CHECKERS`` by name, ``INVARIANTS`` in order): ``conservation``,
``balanced_entries``, ``non_negative``, ``acknowledged_exactly_once``,
``idempotent_replay``, ``outbox_delivered``, ``projection_converges``,
``audit_complete``. SLO results: ``slo:<phase>:<p50_ms|p99_ms|error_rate|throughput>``,
``slo:after:recover_within``, ``alert:<name>``.
"""

from __future__ import annotations

from . import _acks, _audit, _delivery, _ledger  # noqa: F401  (register the checkers)
from ._histogram import LatencyHistogram
from ._registry import CHECKERS, INVARIANTS, Checker, checker, run_checks
from ._result import UNKNOWN, CheckContext, CheckResult, ErrorCollector, Validity
from ._series import timeseries
from ._slo import PHASES, check_slos, phase_stats
from ._verdict import (
    EXIT_HARNESS_ERROR,
    EXIT_HELD,
    EXIT_INVARIANT_VIOLATED,
    EXIT_SLO_MISSED,
    EXIT_STEADY_STATE_FAILED,
    EXIT_VACUOUS,
    ExitCode,
    Verdict,
    invocation_exit_code,
    vacuous_faults,
    verdict,
)
from ._windows import FaultWindow, fault_windows_from_history, is_error

__all__ = [
    "CHECKERS",
    "EXIT_HARNESS_ERROR",
    "EXIT_HELD",
    "EXIT_INVARIANT_VIOLATED",
    "EXIT_SLO_MISSED",
    "EXIT_STEADY_STATE_FAILED",
    "EXIT_VACUOUS",
    "INVARIANTS",
    "PHASES",
    "UNKNOWN",
    "CheckContext",
    "CheckResult",
    "Checker",
    "ErrorCollector",
    "ExitCode",
    "FaultWindow",
    "LatencyHistogram",
    "Validity",
    "Verdict",
    "check_slos",
    "checker",
    "fault_windows_from_history",
    "invocation_exit_code",
    "is_error",
    "phase_stats",
    "run_checks",
    "timeseries",
    "vacuous_faults",
    "verdict",
]
