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
from faultline.history import NEMESIS, iter_jsonl, read_jsonl

__all__ = ["DrillRecord", "Judgement", "fault_report", "judge", "load_state"]


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
    """The verdict, and what the reports draw from."""

    verdict: Any
    history: list[dict[str, Any]]
    context: Any
    alerts: list[dict[str, Any]] | None
    breakers: list[dict[str, Any]]


def load_state(path: Path) -> dict[str, Any] | None:
    """A stored snapshot (``None`` when the run took none)."""
    legacy = path.with_suffix(".json")
    if path.is_dir():
        from faultline.checks import read_state

        return dict(read_state(path))
    if legacy.exists():
        return dict(json.loads(legacy.read_text()))
    return None


def _json(path: Path) -> Any:
    return json.loads(path.read_text()) if path.exists() else None


def fault_report(history: Path, scenario: Any) -> list[dict[str, Any]]:
    """One entry per fault of the scenario: window, effect, status and the client
    operations invoked inside the window (one streaming pass over the history)."""
    faults = list(scenario.faults)
    report: list[dict[str, Any]] = [
        {"index": i, "name": f.label, "kind": f.kind, "target": f.target,
         "expect_effect": bool(f.expect_effect), "start_s": None, "end_s": None,
         "effect": None, "seen": None, "status": "not_started", "errors": [],
         "operations": {"invoked": 0, "ok": 0, "fail": 0, "info": 0}}
        for i, f in enumerate(faults)]
    open_: set[int] = set()
    pending: dict[Any, list[int]] = {}
    t0: int | None = None
    if history.exists():
        for line in iter_jsonl(history):
            t = int(line.get("time") or 0)
            if line.get("process") == NEMESIS:
                value = line.get("value") or {}
                index = value.get("index")
                if not isinstance(index, int) or not 0 <= index < len(report):
                    continue
                entry = report[index]
                when = None if t0 is None else round((t - t0) / 1e9, 3)
                f = line.get("f")
                if f == "start":
                    entry["start_s"], entry["status"] = when, "started"
                    open_.add(index)
                elif f == "stop":
                    entry["end_s"] = when
                    open_.discard(index)
                    if "effect" in value:
                        entry["effect"] = {k: int(v) for k, v in value["effect"].items()}
                    if "seen" in value:
                        entry["seen"] = {k: int(v) for k, v in value["seen"].items()}
                elif f == "skipped":
                    entry["status"] = "skipped"
                    entry["errors"].append(str(value.get("reason", "")))
                elif f == "error":
                    entry["errors"].append(str(value.get("error", "")))
                continue
            if t0 is None:
                t0 = t
            process = line.get("process")
            if line.get("type") == "invoke":
                inside = sorted(open_)
                pending[process] = inside
                for i in inside:
                    report[i]["operations"]["invoked"] += 1
            else:
                for i in pending.pop(process, ()):
                    kind = line.get("type")
                    if kind in ("ok", "fail", "info"):
                        report[i]["operations"][kind] += 1
    for windows in pending.values():  # invoked, never completed: unknown
        for i in windows:
            report[i]["operations"]["info"] += 1
    for entry in report:
        effect = entry["effect"]
        if entry["status"] == "skipped":
            pass
        elif entry["status"] == "not_started":
            entry["status"] = "failed" if entry["errors"] else "not_started"
        elif effect is None:
            entry["status"] = "effect_unknown"
        elif any(v for v in effect.values()):
            entry["status"] = "fired"
        else:
            entry["status"] = "no_effect"
        entry["vacuous"] = entry["expect_effect"] and entry["status"] != "fired"
    return report


def judge(folder: RunFolder, scenario: Any, *,
          info: Mapping[str, Any] | None = None) -> Judgement:
    """The verdict of the run in ``folder``: invariants, SLOs, expected alerts, the
    steady state and every fault's effect."""
    from faultline.checks import CheckContext, CheckResult, check_slos, run_checks, verdict

    record = DrillRecord.load(folder)
    history = read_jsonl(folder.history) if folder.history.exists() else []
    state = load_state(folder.final_state)
    baseline = load_state(folder.baseline_state)
    alerts = _json(folder.file(RunFolder.ALERTS))
    ctx = CheckContext(scenario=scenario, baseline=baseline, alerts=alerts)
    steady = [CheckResult.from_dict(r) for r in record.steady_results]
    broken_before = [r for r in steady if r.valid is False]
    for r in broken_before:  # a violation is a violation in every phase
        r.name = f"{r.name} (steady state)"
    results: list[Any] = list(broken_before)
    if state is not None:
        results += run_checks(scenario.checks, history, state, ctx)
        results += check_slos(scenario, history, ctx)
    faults = fault_report(folder.history, scenario)
    vacuous = [f for f in faults if f["vacuous"]]
    details = {"run_dir": str(folder.path), "system": record.system, "target": record.target,
               "bugs": record.bugs, "steady_state": record.steady_message,
               "replay": record.replay, **dict(info or {})}
    harness = record.harness_error
    if record.interrupted and not harness:
        harness = "interrupted (Ctrl-C or SIGTERM) before the verdict"
    v = verdict(results, steady_state_ok=record.steady_ok or bool(broken_before),
                harness_error=harness,
                expected=scenario.checks,
                scenario=scenario.name, seed=scenario.seed, info=details)
    v.info["faults"] = faults
    if v.exit_code == 0 and vacuous:
        names = ", ".join(f"{f['name']} ({f['status'].replace('_', ' ')})" for f in vacuous)
        v.exit_code, v.status = 5, "vacuous"
        v.reason = f"vacuous: a fault never touched the system: {names}"
    if record.interrupted:
        v.exit_code, v.status = 130, "interrupted"
        v.reason = "interrupted (Ctrl-C or SIGTERM) before the drill ended"
    return Judgement(v, history, ctx, alerts, _json(folder.file(RunFolder.BREAKERS)) or [])
