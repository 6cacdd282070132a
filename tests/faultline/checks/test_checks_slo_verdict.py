"""SLO checks, the latency histogram and the verdict's exit codes."""

from __future__ import annotations

import math
import random
from typing import Any

import pytest

from faultline.checks import (
    CheckContext,
    CheckResult,
    FaultWindow,
    LatencyHistogram,
    check_slos,
    fault_windows_from_history,
    phase_stats,
    timeseries,
    verdict,
)
from faultline.scenario import parse_scenario

S = 1_000_000_000


def op_pair(i: int, t_s: float, lat_ms: float, type_: str = "ok", status: int | None = 201) -> list[dict[str, Any]]:
    t = int(t_s * S)
    proc = f"p{i % 8}"
    return [
        {"index": 0, "type": "invoke", "process": proc, "f": "balance", "time": t, "key": None},
        {"index": 0, "type": type_, "process": proc, "f": "balance", "time": t + int(lat_ms * 1e6 + 0.5),
         "status": status, "latency_ms": lat_ms},
    ]


def nemesis(t_s: float, f: str, index: int = 0, name: str = "latency@api->postgres") -> dict[str, Any]:
    return {"process": "nemesis", "type": "info", "f": f, "time": int(t_s * S),
            "value": {"index": index, "name": name, "fault": "toxic", "hop": "api->postgres"}}


def drill(*, during_lat: float = 50.0, during_errors: float = 0.0, after_errors_until: float = 0.0) -> list[dict[str, Any]]:
    """10 s before, fault 10-20 s, 10 s after; 100 ops/s."""
    rng = random.Random(1)
    history: list[dict[str, Any]] = []
    for step in range(3000):
        t = step / 100
        if step == 1000:
            history.append(nemesis(10, "start"))
        if step == 2000:
            history.append(nemesis(20, "stop"))
        lat = during_lat if 10 <= t < 20 else rng.uniform(1, 10)
        error = (10 <= t < 20 and rng.random() < during_errors) or (20 <= t < 20 + after_errors_until)
        history += op_pair(step, t, lat, "info" if error else "ok", None if error else 200)
    return history


SCENARIO = """
name: slo-test
load: {duration: 30s}
faults: [{at: 10s, for: 10s, hop: api->postgres, toxic: latency, latency: 50}]
slos:
  - {phase: before, p50_ms: 20, p99_ms: 15, error_rate: 0.01, throughput: 50}
  - {phase: during, p99_ms: {below: 100}, error_rate: 0.3}
  - {phase: after, error_rate: 0.5, recover_within: 3s}
expect_alerts:
  - {alert: outbox_backlog, within: 5s, clear_within: 5s}
"""


def by_name(results: list[CheckResult]) -> dict[str, CheckResult]:
    return {r.name: r for r in results}


def test_phases_follow_the_fault_windows() -> None:
    history = drill()
    stats = phase_stats(history, CheckContext())
    assert set(stats) == {"before", "during", "after"}
    assert stats["before"]["operations"] == 1000
    assert stats["during"]["operations"] == 1000
    assert stats["during"]["latency"]["p50_ms"] == pytest.approx(50, rel=0.01)
    assert stats["before"]["throughput"] == pytest.approx(100, rel=0.02)


def test_slos_pass_and_fail_per_metric() -> None:
    scn = parse_scenario(SCENARIO)
    ctx = CheckContext(alerts=[])
    results = by_name(check_slos(scn, drill(during_lat=150, after_errors_until=1.0), ctx))
    assert results["slo:before:p50_ms"].valid is True
    assert results["slo:before:p99_ms"].valid is True
    assert results["slo:before:error_rate"].valid is True
    assert results["slo:before:throughput"].valid is True
    missed = results["slo:during:p99_ms"]
    assert missed.valid is False
    assert missed.kind == "slo"
    assert "150" in missed.message
    assert results["slo:after:recover_within"].valid is True
    assert results["slo:after:recover_within"].counts["recovered_after_s"] == pytest.approx(1.0)
    assert results["alert:outbox_backlog"].valid is False  # expected alert never fired


def test_slow_recovery_misses_recover_within() -> None:
    scn = parse_scenario(SCENARIO)
    results = by_name(check_slos(scn, drill(after_errors_until=5.0)))
    assert results["slo:after:recover_within"].valid is False


def test_never_recovering_misses_recover_within() -> None:
    scn = parse_scenario(SCENARIO)
    results = by_name(check_slos(scn, drill(after_errors_until=20.0)))
    rec = results["slo:after:recover_within"]
    assert rec.valid is False
    assert "not recovered" in rec.message


def test_error_rate_counts_info_and_5xx_not_business_refusals() -> None:
    history = []
    for i in range(100):
        if i < 10:
            history += op_pair(i, i / 10, 5, "info", None)
        elif i < 20:
            history += op_pair(i, i / 10, 5, "fail", 503)
        elif i < 50:
            history += op_pair(i, i / 10, 5, "fail", 422)
        else:
            history += op_pair(i, i / 10, 5)
    stats = phase_stats(history, CheckContext())
    assert stats["before"]["error_rate"] == pytest.approx(0.2)


def test_expected_alert_fired_and_cleared() -> None:
    scn = parse_scenario(SCENARIO)
    alerts = [
        {"alert": "outbox_backlog", "state": "firing", "time_ns": 12 * S},
        {"alert": "outbox_backlog", "state": "resolved", "time_ns": 23 * S},
    ]
    res = by_name(check_slos(scn, drill(), CheckContext(alerts=alerts)))["alert:outbox_backlog"]
    assert res.valid is True
    assert res.counts["fired_after_s"] == pytest.approx(2.0)


def test_expected_alert_that_never_cleared_is_missed() -> None:
    scn = parse_scenario(SCENARIO)
    alerts = [{"alert": "outbox_backlog", "state": "firing", "time_ns": 12 * S}]
    res = by_name(check_slos(scn, drill(), CheckContext(alerts=alerts)))["alert:outbox_backlog"]
    assert res.valid is False


def test_expected_alert_is_unknown_when_rules_were_not_evaluated() -> None:
    scn = parse_scenario(SCENARIO)
    res = by_name(check_slos(scn, drill()))["alert:outbox_backlog"]
    assert res.valid == "unknown"


def test_slo_for_a_phase_without_operations_is_unknown() -> None:
    scn = parse_scenario(SCENARIO)
    history = [op for op in drill() if op["process"] != "nemesis"]  # no fault ever ran
    results = by_name(check_slos(scn, history))
    assert results["slo:during:p99_ms"].valid == "unknown"
    assert results["slo:after:recover_within"].valid == "unknown"


def test_fault_windows_pair_start_and_stop() -> None:
    history = [nemesis(1, "start", 0, "a"), nemesis(2, "start", 1, "b"), nemesis(3, "stop", 0, "a")]
    windows = fault_windows_from_history(history)
    assert [(w.name, w.start_ns, w.end_ns) for w in windows] == [("a", S, 3 * S), ("b", 2 * S, None)]


def test_context_fault_windows_override_history() -> None:
    ctx = CheckContext(fault_windows=[FaultWindow(0, "x", 5 * S, 6 * S)])
    stats = phase_stats(drill(), ctx)
    assert stats["during"]["duration_s"] == pytest.approx(1.0)


def test_timeseries_has_one_row_per_second() -> None:
    series = timeseries(drill())
    assert len(series) == 30
    assert series[0]["ok"] == 100
    assert series[15]["p50_ms"] == pytest.approx(50, rel=0.01)


# ------------------------------------------------------------------ histogram


def test_histogram_percentiles_within_one_percent() -> None:
    rng = random.Random(5)
    values = [rng.lognormvariate(2, 1.2) for _ in range(50_000)]
    hist = LatencyHistogram()
    hist.record_many(values)
    ordered = sorted(values)
    for p in (50, 90, 99, 99.9):
        exact = ordered[math.ceil(len(ordered) * p / 100) - 1]
        assert hist.percentile(p) == pytest.approx(exact, rel=0.01)
    assert hist.count == len(values)
    assert hist.mean == pytest.approx(sum(values) / len(values), rel=1e-3)


def test_histogram_record_and_record_many_agree_and_merge() -> None:
    rng = random.Random(6)
    values = [rng.uniform(0, 5000) for _ in range(5000)] + [0.0, -3.0, 1e6]
    one, many = LatencyHistogram(), LatencyHistogram()
    for v in values:
        one.record(v)
    many.record_many(values)
    assert one.summary() == many.summary()
    merged = LatencyHistogram()
    merged.record_many(values[:100])
    rest = LatencyHistogram()
    rest.record_many(values[100:])
    merged.merge(rest)
    assert merged.summary() == many.summary()


def test_empty_histogram() -> None:
    hist = LatencyHistogram()
    assert math.isnan(hist.percentile(99))
    assert hist.summary() == {"count": 0}


# ------------------------------------------------------------------ verdict


def r(name: str, valid: Any, kind: str = "invariant") -> CheckResult:
    return CheckResult(name=name, valid=valid, kind=kind)


@pytest.mark.parametrize(
    ("results", "kwargs", "code"),
    [
        ([r("a", True), r("s", True, "slo")], {}, 0),
        ([r("a", False), r("s", False, "slo")], {}, 1),
        ([r("a", True), r("s", False, "slo")], {}, 2),
        ([r("a", True)], {"steady_state_ok": False}, 3),
        ([r("a", False)], {"harness_error": "proxy died"}, 4),
        ([r("a", True), r("b", "unknown")], {}, 4),
        ([r("a", False), r("b", "unknown")], {}, 1),
        ([], {}, 4),
        ([r("a", True)], {"expected": ["a", "b"]}, 4),
    ],
)
def test_verdict_exit_codes(results: list[CheckResult], kwargs: dict[str, Any], code: int) -> None:
    v = verdict(results, **kwargs)
    assert v.exit_code == code
    assert v.reason


def test_verdict_round_trips_through_json() -> None:
    import json

    v = verdict([r("a", True), r("s", False, "slo")], scenario="x", seed=3)
    again = type(v).from_dict(json.loads(json.dumps(v.to_dict())))
    assert again.exit_code == 2
    assert [x.name for x in again.failed] == ["s"]
    assert again.seed == 3


def test_public_surfaces_are_exactly_all() -> None:
    import faultline.alerts as alerts_pkg
    import faultline.checks as checks_pkg

    for pkg, modules in ((checks_pkg, {"synthetic"}), (alerts_pkg, set())):
        # "@py_*": pytest rewrites faultline's modules (it is a pytest plugin package)
        public = {n for n in dir(pkg) if not n.startswith(("_", "@"))}
        assert public - modules - {"annotations"} == set(pkg.__all__), pkg.__name__


def test_fault_windows_of_the_index_equal_a_scan_of_the_history() -> None:
    from faultline.checks._history import context_windows

    plain = drill()
    # a nemesis that also logs its invokes (Jepsen's own nemesis does)
    with_invokes = drill()
    with_invokes.insert(1500, dict(nemesis(10, "start"), type="invoke"))
    for history in (plain, with_invokes):
        expected = [w.to_dict() for w in fault_windows_from_history(history)]
        assert [w.to_dict() for w in context_windows(history, CheckContext())] == expected


def test_late_operation_counts_in_the_phase_it_was_due() -> None:
    """Constant arrival rate: an operation due during the fault but sent after it heals
    (it waited 4 s past its slot) belongs to the during phase, with its whole latency;
    counted by its send time, it would blame the after phase for the fault's backlog."""
    history = drill()
    sent_ns = int(21 * S)  # after the fault, due at 17 s
    history += [
        {"index": 0, "type": "invoke", "process": "late", "f": "balance", "time": sent_ns},
        {"index": 0, "type": "ok", "process": "late", "f": "balance", "time": sent_ns + 5_000_000,
         "status": 200, "latency_ms": 4005.0, "service_ms": 5.0},
    ]
    stats = phase_stats(history, CheckContext())
    assert stats["during"]["operations"] == 1001
    assert stats["after"]["operations"] == 1000
    assert stats["during"]["latency"]["max_ms"] >= 4000
    assert stats["after"]["latency"]["max_ms"] < 100
