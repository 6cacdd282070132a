"""Checking a stored run from its files: the one entry point of the engine and the CLI.

The engine passes paths and never the rows: the history and the snapshots stream from
disk into columns, once, and every invariant, SLO, phase statistic and per-second
series of the run is computed from those columns (``ctx.cache``)::

    run = StoredRun.open(history=folder.history, state=folder.final_state,
                         baseline=folder.baseline_state, scenario=scn, alerts=alerts)
    results = run.check(scn.invariants) + run.slos()
    series, stats = run.timeseries(), run.phase_stats()

``check_run(...)`` is the first two lines in one call; ``recheck_run_folder(dir)`` is
``faultline check DIR``: it reads a run folder by ``RunFolder``'s names and gives the
verdict again.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._history import context_windows
from ._parallel import prefetch
from ._registry import INVARIANTS, run_checks
from ._result import UNKNOWN, CheckContext, CheckResult
from ._series import timeseries as _timeseries
from ._slo import check_slos
from ._slo import phase_stats as _phase_stats
from ._snapshot import StateSource
from ._source import FileRecords, ListRecords, RecordSource
from ._state import StateError, open_state
from ._verdict import ExitCode, Verdict, verdict
from ._windows import FaultWindow

__all__ = ["StoredRun", "check_run", "recheck_run_folder"]

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


def recheck_run_folder(run_dir: PathLike) -> tuple[Any, Verdict, StoredRun]:
    """``faultline check DIR``: (scenario, verdict, the opened run) of a stored run.

    The steady-state outcome, its probe results and the faults' effects are those the
    drill recorded in its ``verdict.json``; everything else is judged again from the
    files. Raises what reading the scenario raises (the CLI reports it, exit 4).
    """
    from faultline.drill._store import RunFolder
    from faultline.scenario import load_scenario

    folder = RunFolder(Path(run_dir))
    scn = load_scenario(folder.scenario)
    alerts_path = folder.file(RunFolder.ALERTS)
    alerts = list(json.loads(alerts_path.read_text())) if alerts_path.is_file() else None
    run = StoredRun.open(history=folder.history, state=folder.final_state,
                         baseline=folder.baseline_state, scenario=scn, alerts=alerts)
    old: dict[str, Any] = {}
    if folder.verdict.is_file():
        old = json.loads(folder.verdict.read_text())
    steady_ok = int(old.get("exit_code", 0)) != ExitCode.STEADY_STATE_FAILED
    probe = [CheckResult.from_dict(r) for r in old.get("steady_state", [])]
    results = run.check(scn.invariants) + run.slos()
    v = verdict(results, steady_state_ok=steady_ok, steady_state_results=probe,
                expected=scn.invariants, faults=old.get("faults"), scenario=scn.name,
                seed=scn.seed, info={"run_dir": str(folder.path), "rechecked": True})
    return scn, v, run
