"""Checking a stored run from its files: the one entry point of the engine and the CLI.

The engine passes paths and never the rows: the history and the snapshots stream from
disk into columns, once, and every invariant, SLO, phase statistic and per-second
series of the run is computed from those columns (``ctx.cache``)::

    run = StoredRun.open(history=folder.history, state=folder.final_state,
                         baseline=folder.baseline_state, scenario=scn, alerts=alerts)
    results = run.check(scn.invariants) + run.slos()
    series, stats = run.timeseries(), run.phase_stats()

``check_run(...)`` is the first two lines in one call. Judging a run folder (its file
names, the steady state, the faults' effects) is the drill engine's
(:func:`faultline.drill.judge`); this module only knows paths.
"""

from __future__ import annotations

import contextlib
import gc
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._history import context_windows, history_index, ops_by_start
from ._index import ERROR, EXPECTED_FAIL, OK
from ._parallel import prefetch
from ._registry import INVARIANTS, run_checks
from ._result import UNKNOWN, CheckContext, CheckResult
from ._series import timeseries as _timeseries
from ._slo import check_slos
from ._slo import phase_stats as _phase_stats
from ._snapshot import StateSource
from ._source import FileRecords, ListRecords, RecordSource
from ._state import StateError, open_state
from ._windows import FaultWindow

__all__ = ["StoredRun", "check_run"]

PathLike = str | os.PathLike[str]


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Millions of short-lived containers and no cycles: the cyclic garbage collector
    would only walk the columns' owners again and again (~20% of a check)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@dataclass(slots=True)
class StoredRun:
    """A run's history and snapshots opened for checking (nothing read until asked).

    ``state_problem`` says why there is no final state (then every invariant is
    ``unknown`` with that message).
    """

    history: RecordSource
    state: StateSource | None
    context: CheckContext
    state_problem: str = ""

    @classmethod
    def open(
        cls,
        *,
        history: PathLike | None,
        state: PathLike | None,
        baseline: PathLike | None = None,
        scenario: Any = None,
        alerts: Sequence[Mapping[str, Any]] | None = None,
        fault_windows: Iterable[FaultWindow | Mapping[str, Any]] = (),
        run_start_ns: int | None = None,
        run_end_ns: int | None = None,
    ) -> StoredRun:
        """Open the files. A missing history is an empty one; a missing or unreadable
        snapshot is no snapshot (``state_problem``); a missing baseline is none."""
        records: RecordSource = ListRecords([], "history")
        if history is not None and Path(history).is_file():
            records = FileRecords(history, "history")
        final: StateSource | None = None
        problem = ""
        if state is None:
            problem = "no final-state snapshot"
        else:
            try:
                final = open_state(state)
            except (StateError, OSError, ValueError) as exc:
                problem = f"the final-state snapshot cannot be read: {exc}"
        before: StateSource | None = None
        if baseline is not None:
            try:
                before = open_state(baseline)
            except StateError:
                before = None
        ctx = CheckContext(scenario=scenario, baseline=before,
                           alerts=list(alerts) if alerts is not None else None,
                           fault_windows=list(fault_windows), run_start_ns=run_start_ns,
                           run_end_ns=run_end_ns)
        return cls(records, final, ctx, problem)

    def check(self, invariants: Iterable[str] | None = None) -> list[CheckResult]:
        """The invariant checkers by name (``None`` or ``["all"]``: every one)."""
        if self.state is None:
            names = list(INVARIANTS) if invariants is None else list(invariants)
            if "all" in names:
                names = [n for n in names if n != "all"] + [n for n in INVARIANTS if n not in names]
            return [CheckResult(name=n, valid=UNKNOWN, message=self.state_problem) for n in names]
        with _collector_paused():
            prefetch(self.history, self.state, self.context)
            return run_checks(invariants, self.history, self.state, self.context)

    def slos(self, scenario: Any = None) -> list[CheckResult]:
        """SLOs, recovery deadline and expected alerts of the scenario (``kind == "slo"``)."""
        with _collector_paused():
            return check_slos(scenario if scenario is not None else self.context.scenario,
                              self.history, self.context)

    def timeseries(self, bucket_s: float = 1.0) -> list[dict[str, Any]]:
        """The per-second series the report plots."""
        with _collector_paused():
            return _timeseries(self.history, bucket_s=bucket_s, context=self.context)

    def phase_stats(self) -> dict[str, dict[str, Any]]:
        """Per phase: operations, errors, error rate, throughput, latency summary."""
        with _collector_paused():
            return _phase_stats(self.history, self.context)

    def fault_windows(self) -> list[FaultWindow]:
        """The fault windows (from the context, else from the history's nemesis lines)."""
        return context_windows(self.history, self.context)

    def nemesis_lines(self) -> list[dict[str, Any]]:
        """Every fault event of the history (start, stop with its effect, skipped, error),
        in history order — from the one pass the checkers make anyway."""
        with _collector_paused():
            return [op for _, op in history_index(self.history, self.context).nemesis]

    def origin_ns(self) -> int | None:
        """Where the run's clock starts (the first history line; the report's 0 s)."""
        if self.context.run_start_ns is not None:
            return self.context.run_start_ns
        first = history_index(self.history, self.context).first_ns
        return None if first is None else int(first)

    def last_ns(self) -> int | None:
        """The time of the history's last line."""
        last = history_index(self.history, self.context).last_ns
        return None if last is None else int(last)

    def operations_between(self, start_ns: int, end_ns: int) -> dict[str, int]:
        """Client operations invoked in ``[start_ns, end_ns]`` and how they ended:
        ``ok``, ``fail`` (a definite refusal), ``info`` (an unknown outcome or an error
        answer). By bisection over the operations sorted by start."""
        import numpy as np

        with _collector_paused():
            starts, _, outs = ops_by_start(self.history, self.context)
        lo = int(np.searchsorted(starts, start_ns, side="left"))
        hi = int(np.searchsorted(starts, end_ns, side="right"))
        window = outs[lo:hi]
        return {"invoked": hi - lo, "ok": int(np.count_nonzero(window == OK)),
                "fail": int(np.count_nonzero(window == EXPECTED_FAIL)),
                "info": int(np.count_nonzero(window == ERROR))}


def check_run(
    history: PathLike | None,
    state: PathLike | None,
    baseline: PathLike | None = None,
    *,
    invariants: Iterable[str] | None = None,
    scenario: Any = None,
    alerts: Sequence[Mapping[str, Any]] | None = None,
    fault_windows: Iterable[FaultWindow | Mapping[str, Any]] = (),
    slos: bool = True,
) -> list[CheckResult]:
    """Every invariant (and, with a scenario and ``slos``, every SLO) of a stored run."""
    run = StoredRun.open(history=history, state=state, baseline=baseline, scenario=scenario,
                         alerts=alerts, fault_windows=fault_windows)
    results = run.check(invariants if invariants is not None else
                        getattr(scenario, "invariants", None))
    if slos and scenario is not None:
        results += run.slos()
    return results
