"""Invariant and SLO checkers: pure functions of (history, final state, context).

A stored run, from its files (the engine, ``faultline check`` and ``faultline report``)::

    from faultline.checks import StateWriter, StoredRun, verdict, invocation_exit_code
    with StateWriter(folder.final_state) as w:          # snapshot: one file per table
        w.table("accounts", rows)                        # rows from any iterable
        w.meta("external_inflow", {"EUR": 100})
    run = StoredRun.open(history=folder.history, state=folder.final_state,
                         baseline=folder.baseline_state, scenario=scn, alerts=alerts)
    results = run.check(scn.invariants) + run.slos()     # or check_run(...) in one call
    series, stats = run.timeseries(), run.phase_stats()  # the report's plots and tables
    v = verdict(results, steady_state_ok=True, steady_state_results=probe_results,
                faults=[{"name": ..., "effect": {...}, "expect_effect": True}],
                expected=scn.invariants, scenario=scn.name, seed=scn.seed)
    sys.exit(v.exit_code)   # ExitCode: 0 held, 1 invariant, 2 SLO, 3 steady state,
                            # 4 harness/unknown, 5 vacuous (precedence: _verdict.py)

In memory (tests, small runs): ``run_checks(names, history, state, ctx)`` and
``check_slos(scn, history, ctx)`` with ``history`` a list of dicts (contracts §6) and
``state`` a snapshot dict (§5); ``None`` state -> every invariant ``unknown``.

- ``CheckResult``: ``name, kind, valid (True|False|"unknown"), counts,
  errors [{type, count, first, worst, last}], evidence {"history": [line], "rows":
  {table: [ids]}}, message``; ``.to_dict()``.
- A checker that raises gives ``unknown`` (``checker_crashed``).

Checkers (``CHECKERS`` by name, ``INVARIANTS`` in order), and every error type each can
report: docs/checks.md. SLO results: ``slo:<phase>:<p50_ms|p99_ms|error_rate|
throughput>``, ``slo:after:recover_within``, ``alert:<name>``.
"""

from __future__ import annotations

from . import _acks, _audit, _delivery, _ledger  # noqa: F401  (register the checkers)
from ._histogram import LatencyHistogram
from ._registry import CHECKERS, ERROR_KINDS, INVARIANTS, Checker, checker, run_checks
from ._result import UNKNOWN, CheckContext, CheckResult, ErrorCollector, Validity
from ._run import StoredRun, check_run
from ._series import timeseries
from ._slo import PHASES, check_slos, phase_stats
from ._state import StateError, StateWriter, TableWriter, open_state, read_state
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
    "ERROR_KINDS",
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
    "StateError",
    "StateWriter",
    "StoredRun",
    "TableWriter",
    "Validity",
    "Verdict",
    "check_run",
    "check_slos",
    "checker",
    "fault_windows_from_history",
    "invocation_exit_code",
    "is_error",
    "open_state",
    "phase_stats",
    "read_state",
    "run_checks",
    "timeseries",
    "vacuous_faults",
    "verdict",
]
