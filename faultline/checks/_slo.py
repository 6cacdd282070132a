"""SLO checks: per-phase latency, error rate, throughput; recovery; expected alerts.

Phases are cut by the fault windows on the history clock: ``before`` the first fault
starts, ``during`` from there until the last fault heals, ``after`` from then to the
end of the history. An operation belongs to the phase in which it was *invoked*, so a
request stuck behind a fault is charged to the fault.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from ._histogram import LatencyHistogram
from ._history import ERROR, OK, FaultWindow, context_windows, history_index, ops_by_start
from ._result import UNKNOWN, CheckContext, CheckResult

__all__ = ["PHASES", "check_slos", "phase_bounds", "phase_stats"]

PHASES = ("before", "during", "after")
#: error rate under which the stack counts as recovered when the scenario names none
DEFAULT_RECOVERED_ERROR_RATE = 0.01
_NS = 1_000_000_000


def _get(obj: Any, name: str, default: Any = None) -> Any:
    if obj is None:
        return default
    if isinstance(obj, Mapping):
        return obj.get(name, default)
    return getattr(obj, name, default)


def phase_bounds(history: Any, ctx: CheckContext) -> dict[str, tuple[int, int] | None]:
    """``{phase: (start_ns, end_ns)}``; ``None`` for a phase the run did not have."""
    ix = history_index(history, ctx)
    first = ctx.run_start_ns if ctx.run_start_ns is not None else ix.first_ns
    last = ctx.run_end_ns if ctx.run_end_ns is not None else ix.last_ns
    if first is None or last is None:
        return {p: None for p in PHASES}
    windows = context_windows(history, ctx)
    if not windows:
        return {"before": (first, last), "during": None, "after": None}
    fault_start = min(w.start_ns for w in windows)
    ends = [w.end_ns for w in windows]
    healed = None if any(e is None for e in ends) else max(e for e in ends if e is not None)
    return {
        "before": (first, fault_start) if fault_start > first else None,
        "during": (fault_start, healed if healed is not None else last),
        "after": (healed, last) if healed is not None and last > healed else None,
    }


def phase_stats(history: Any, ctx: CheckContext) -> dict[str, dict[str, Any]]:
    """Per phase: operations, ok, errors, error_rate, throughput (ok/s), latency summary."""
    cached = ctx.cache.get("phase_stats")
    if cached is not None and cached[0] is history:
        return cached[1]  # type: ignore[no-any-return]
    starts, lats, outs = ops_by_start(history, ctx)
    bounds = phase_bounds(history, ctx)
    n = len(starts)
    before, after = bounds["before"], bounds["after"]
    cut_before = int(np.searchsorted(starts, before[1])) if bounds["during"] and before else 0
    cut_after = int(np.searchsorted(starts, after[0])) if after else n
    if bounds["during"] is None:
        cut_before = cut_after = n
    ranges = {"before": (0, cut_before), "during": (cut_before, cut_after), "after": (cut_after, n)}
    stats: dict[str, dict[str, Any]] = {}
    for p in PHASES:
        b = bounds[p]
        if b is None:
            continue
        lo, hi = ranges[p]
        phase_outs = outs[lo:hi]
        ok = int(np.count_nonzero(phase_outs == OK))
        errs = int(np.count_nonzero(phase_outs == ERROR))
        hist = LatencyHistogram()
        hist.record_array(lats[lo:hi][phase_outs == OK])
        duration = max((b[1] - b[0]) / _NS, 1e-9)
        total = hi - lo
        stats[p] = {
            "start_ns": b[0],
            "end_ns": b[1],
            "duration_s": duration,
            "operations": total,
            "ok": ok,
            "errors": errs,
            "error_rate": errs / total if total else math.nan,
            "throughput": ok / duration,
            "latency": hist.summary(),
        }
    ctx.cache["phase_stats"] = (history, stats)
    return stats


def _bound_check(value: float, bound: Any) -> tuple[bool, str]:
    below = _get(bound, "below")
    above = _get(bound, "above")
    if isinstance(bound, int | float):
        below, above = float(bound), None
    parts = []
    ok = True
    if below is not None:
        ok = ok and value < below
        parts.append(f"< {below:g}")
    if above is not None:
        ok = ok and value > above
        parts.append(f"> {above:g}")
    return ok, " and ".join(parts)


def _slo_result(name: str, valid: Any, message: str, counts: dict[str, Any]) -> CheckResult:
    errors = []
    if valid is False:
        errors = [{"type": "slo_missed", "count": 1, "first": message, "worst": message, "last": message}]
    return CheckResult(name=name, valid=valid, kind="slo", counts=counts, errors=errors, message=message)


def _metric(stats: Mapping[str, Any], metric: str) -> float:
    if metric in ("p50_ms", "p99_ms"):
        return float(stats["latency"].get(metric, math.nan))
    return float(stats[metric])


_METRICS = ("p50_ms", "p99_ms", "error_rate", "throughput")


def _recovery(history: Any, ctx: CheckContext, deadline_s: float, threshold: float) -> CheckResult:
    name = "slo:after:recover_within"
    windows = context_windows(history, ctx)
    ends = [w.end_ns for w in windows]
    if not windows or any(e is None for e in ends):
        return _slo_result(name, UNKNOWN, "no healed fault to recover from", {})
    healed = max(e for e in ends if e is not None)
    starts, _, outs = ops_by_start(history, ctx)
    buckets: dict[int, list[int]] = {}
    lo = int(np.searchsorted(starts, healed))
    n = len(starts)
    if lo < n:
        last = int((starts[-1] - healed) // _NS) + 2
        edges = np.searchsorted(starts, healed + np.arange(1, last + 1, dtype=np.float64) * _NS)
        errors_before = np.concatenate([[0], np.cumsum(outs == ERROR)])
        for second, hi in enumerate(edges.tolist()):
            if hi > lo:
                buckets[second] = [hi - lo, int(errors_before[hi] - errors_before[lo])]
            lo = hi
            if lo >= n:
                break
    if not buckets:
        return _slo_result(name, UNKNOWN, "no operations after the last fault healed", {})
    recovered_at: int | None = None
    for second in sorted(buckets, reverse=True):
        total, bad = buckets[second]
        if bad / total > threshold:
            break
        recovered_at = second
    if recovered_at is None:
        msg = f"not recovered by the end of the run (error rate > {threshold:g} in its last second)"
        return _slo_result(name, False, msg, {"deadline_s": deadline_s})
    took = float(recovered_at)
    valid = took <= deadline_s
    msg = f"recovered {took:g}s after the last fault healed (must be <= {deadline_s:g}s)"
    return _slo_result(name, valid, msg, {"recovered_after_s": took, "deadline_s": deadline_s})


def _find_window(windows: list[FaultWindow], ref: Any) -> FaultWindow | None:
    if ref is None:
        return windows[0] if windows else None
    for w in windows:
        if (isinstance(ref, int) and w.index == ref) or (isinstance(ref, str) and w.name == ref):
            return w
    if isinstance(ref, int) and all(w.index is None for w in windows) and 0 <= ref < len(windows):
        return windows[ref]
    return None


def _expected_alert(history: Any, ctx: CheckContext, expect: Any) -> CheckResult:
    alert = str(_get(expect, "alert"))
    name = f"alert:{alert}"
    within = float(_get(expect, "within") or 0.0)
    clear_within = _get(expect, "clear_within")
    if ctx.alerts is None:
        return _slo_result(name, UNKNOWN, "alert rules were not evaluated in this run", {})
    window = _find_window(context_windows(history, ctx), _get(expect, "fault"))
    if window is None:
        return _slo_result(name, UNKNOWN, "the fault this alert belongs to never ran", {})
    events = sorted(
        (e for e in ctx.alerts if e.get("alert") == alert), key=lambda e: e.get("time_ns", 0)
    )
    firing_at_start = False
    fired_ns: int | None = None
    for e in events:
        t = e.get("time_ns", 0)
        if t < window.start_ns:
            firing_at_start = e.get("state") == "firing"
        elif t <= window.start_ns + within * _NS and e.get("state") == "firing":
            fired_ns = t
            break
    if fired_ns is None and firing_at_start:
        fired_ns = window.start_ns
    counts: dict[str, Any] = {"fault": window.name, "within_s": within}
    if fired_ns is None:
        return _slo_result(name, False, f"{alert} did not fire within {within:g}s of {window.name}", counts)
    counts["fired_after_s"] = (fired_ns - window.start_ns) / _NS
    if clear_within is None:
        return _slo_result(name, True, f"{alert} fired after {counts['fired_after_s']:.1f}s", counts)
    if window.end_ns is None:
        return _slo_result(name, UNKNOWN, f"{window.name} never healed; cannot check clearing", counts)
    deadline = window.end_ns + float(clear_within) * _NS
    cleared = next(
        (
            e.get("time_ns", 0)
            for e in events
            if e.get("state") == "resolved" and fired_ns <= e.get("time_ns", 0) <= deadline
        ),
        None,
    )
    if cleared is None:
        return _slo_result(
            name, False, f"{alert} did not clear within {float(clear_within):g}s after healing", counts
        )
    counts["cleared_after_heal_s"] = max(0.0, (cleared - window.end_ns) / _NS)
    return _slo_result(name, True, f"{alert} fired and cleared", counts)


def check_slos(scenario: Any, history: Any, context: CheckContext | None = None) -> list[CheckResult]:
    """Every SLO, recovery deadline and expected alert of ``scenario``, as results.

    ``scenario`` is a ``faultline.scenario.Scenario`` (or a dict of the same shape).
    Results have ``kind == "slo"`` and names ``slo:<phase>:<metric>``,
    ``slo:after:recover_within`` and ``alert:<name>``. A phase without operations
    gives ``unknown``.
    """
    ctx = context if context is not None else CheckContext()
    results: list[CheckResult] = []
    try:
        stats = phase_stats(history, ctx)
    except Exception as exc:  # a broken history must not pass the SLOs
        return [_slo_result("slo", UNKNOWN, f"could not compute phase statistics: {exc}", {})]
    recover = _get(scenario, "recover_within")
    recover_threshold = DEFAULT_RECOVERED_ERROR_RATE
    for slo in _get(scenario, "slos", None) or ():
        phase = str(_get(slo, "phase"))
        s = stats.get(phase)
        if _get(slo, "recover_within") is not None:
            recover = _get(slo, "recover_within")
        for metric in _METRICS:
            bound = _get(slo, metric)
            if bound is None:
                continue
            if metric == "error_rate" and phase == "after":
                below = bound if isinstance(bound, int | float) else _get(bound, "below")
                if below is not None:
                    recover_threshold = float(below)
            name = f"slo:{phase}:{metric}"
            if s is None or not s["operations"]:
                results.append(_slo_result(name, UNKNOWN, f"no operations in phase {phase!r}", {}))
                continue
            value = _metric(s, metric)
            if math.isnan(value):
                results.append(_slo_result(name, UNKNOWN, f"no {metric} in phase {phase!r}", {}))
                continue
            ok, wanted = _bound_check(value, bound)
            results.append(
                _slo_result(
                    name,
                    ok,
                    f"{metric} {value:.4g} in phase {phase} (must be {wanted})",
                    {"value": value, "operations": s["operations"]},
                )
            )
    if recover is not None:
        results.append(_recovery(history, ctx, float(recover), recover_threshold))
    for expect in _get(scenario, "expect_alerts", None) or ():
        results.append(_expected_alert(history, ctx, expect))
    return results
