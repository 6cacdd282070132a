"""The judge: a run folder in, a verdict out. The same for ``faultline run`` (at the end
of a drill), ``faultline check`` and ``faultline report`` (on a stored run).

It reads only the run's files: the scenario, the history, the steady-state outcome
(``drill.json``), the snapshots, the alert events. It never touches the live system, so
a stored run can be judged again with a newer checker.

Every fault is reported with its effect (from its stop line in the history: what the
fault proxy, the launcher or the action counted), its window and the client operations
invoked inside it. A fault that expects an effect and shows none — its counters all
zero, unknown (a real Toxiproxy counts nothing), never injected, or its trigger never
came — makes a drill that otherwise held **vacuous** (exit 5): it proved nothing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from faultline.drill._store import RunFolder

__all__ = ["DrillRecord", "Judgement", "fault_report", "judge"]


@dataclass
class DrillRecord:
    """What the runner knew that the history does not say (``drill.json``)."""

    system: str = "payments"
    target: str = "local"
    bugs: list[str] = field(default_factory=list)
    steady_ok: bool = True
    steady_message: str = ""
    #: the steady-state probe's invariant results (``CheckResult.to_dict()``)
    steady_results: list[dict[str, Any]] = field(default_factory=list)
    harness_error: str | None = None
    interrupted: bool = False
    replay: str = ""
    settled: list[str] = field(default_factory=list)
    settle_seconds: float | None = None
    #: seconds spent in each phase (stack, steady, baseline, load, heal, settle, final)
    phases: dict[str, float] = field(default_factory=dict)

    def save(self, folder: RunFolder) -> None:
        folder.file(RunFolder.DRILL).write_text(json.dumps(self.__dict__, indent=2, default=str))

    @classmethod
    def load(cls, folder: RunFolder) -> DrillRecord:
        path = folder.file(RunFolder.DRILL)
        if not path.exists():
            return cls()
        data = json.loads(path.read_text())
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class Judgement:
    """The verdict, and the opened run the reports draw from."""

    verdict: Any
    run: Any
    alerts: list[dict[str, Any]] | None
    breakers: list[dict[str, Any]]


def _json(path: Path) -> Any:
    return json.loads(path.read_text()) if path.exists() else None


def _state_path(path: Path) -> Path | None:
    """A snapshot: its directory, or the single JSON file of older runs; None if none."""
    if path.is_dir() or path.with_suffix(".json").is_file():
        return path
    return None


def fault_report(run: Any, scenario: Any) -> list[dict[str, Any]]:
    """One entry per fault of the scenario: its window (seconds from the run's start),
    effect (what the proxy, the launcher or the action counted when it healed), status,
    and the client operations invoked inside the window and how they ended."""
    from faultline.checks import vacuous_faults

    faults = list(scenario.faults)
    report: list[dict[str, Any]] = [
        {"index": i, "name": f.label, "kind": f.kind, "target": f.target,
         "expect_effect": bool(f.expect_effect), "start_s": None, "end_s": None,
         "effect": None, "seen": None, "status": "not_started", "errors": [],
         "operations": {"invoked": 0, "ok": 0, "fail": 0, "info": 0}}
        for i, f in enumerate(faults)]
    origin = run.origin_ns() or 0
    windows: dict[int, list[int | None]] = {}
    for line in run.nemesis_lines():
        value = line.get("value") or {}
        index = value.get("index")
        if not isinstance(index, int) or not 0 <= index < len(report):
            continue
        entry, t, f = report[index], int(line.get("time") or 0), line.get("f")
        if f == "start":
            entry["start_s"], entry["status"] = round((t - origin) / 1e9, 3), "started"
            windows[index] = [t, None]
        elif f == "stop":
            entry["end_s"] = round((t - origin) / 1e9, 3)
            windows.setdefault(index, [t, None])[1] = t
            if isinstance(value.get("effect"), dict):
                entry["effect"] = {k: int(v) for k, v in value["effect"].items()}
            if isinstance(value.get("seen"), dict):
                entry["seen"] = {k: int(v) for k, v in value["seen"].items()}
        elif f == "skipped":
            entry["status"] = "skipped"
            entry["errors"].append(str(value.get("reason", "")))
        elif f == "error":
            entry["errors"].append(str(value.get("error", "")))
    last = run.last_ns() or 0
    for index, (start, end) in windows.items():
        report[index]["operations"] = run.operations_between(start, end if end is not None
                                                             else last)
    for entry in report:
        if entry["status"] == "started":
            touched = not vacuous_faults([{**entry, "expect_effect": True}])
            entry["status"] = ("effect_unknown" if entry["effect"] is None
                               else "fired" if touched else "no_effect")
        elif entry["status"] == "not_started" and entry["errors"]:
            entry["status"] = "failed"
        entry["vacuous"] = bool(vacuous_faults([entry]))
    return report


def judge(folder: RunFolder, scenario: Any, *,
          info: Mapping[str, Any] | None = None) -> Judgement:
    """The verdict of the run in ``folder``: invariants, SLOs, expected alerts, the
    steady state and every fault's effect."""
    from faultline.checks import CheckResult, StoredRun, verdict

    record = DrillRecord.load(folder)
    alerts = _json(folder.file(RunFolder.ALERTS))
    state = _state_path(folder.final_state)
    run = StoredRun.open(history=folder.history, state=state,
                         baseline=_state_path(folder.baseline_state), scenario=scenario,
                         alerts=alerts)
    results: list[Any] = []
    if state is not None:
        results = run.check(scenario.checks) + run.slos()
    details = {"run_dir": str(folder.path), "system": record.system, "target": record.target,
               "bugs": record.bugs, "steady_state": record.steady_message,
               "replay": record.replay, **dict(info or {})}
    harness = record.harness_error
    v = verdict(results, steady_state_ok=record.steady_ok,
                steady_state_results=[CheckResult.from_dict(r) for r in record.steady_results],
                harness_error=harness, expected=scenario.checks,
                faults=fault_report(run, scenario), scenario=scenario.name,
                seed=scenario.seed, info=details)
    if record.interrupted:
        v.exit_code, v.status = 130, "interrupted"
        v.reason = "interrupted (Ctrl-C or SIGTERM) before the drill ended"
    return Judgement(v, run, alerts, _json(folder.file(RunFolder.BREAKERS)) or [])
