"""Alert rules, their evaluation over scrapes, and the Prometheus text parser."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from faultline.alerts import (
    AlertEvaluator,
    AlertRuleError,
    evaluate_rules,
    load_rules,
    parse_prometheus_text,
    parse_rules,
)

S = 1_000_000_000

TEXT = r"""# HELP payments_outbox_backlog Outbox rows not yet published
# TYPE payments_outbox_backlog gauge
payments_outbox_backlog 150.0
payments_breaker_state{breaker="risk"} 2.0
payments_breaker_state{breaker="db",note="a \"quoted\" \\ value\nx"} 0
payments_api_request_seconds_bucket{route="/transfers",le="+Inf"} 42 1700000000000
weird_nan NaN
weird_inf -Inf
this line is garbage {
"""


def test_prometheus_text_parser() -> None:
    samples = parse_prometheus_text(TEXT)
    by = {(s.name, s.labels): s for s in samples}
    assert by[("payments_outbox_backlog", ())].value == 150.0
    assert by[("payments_breaker_state", (("breaker", "risk"),))].value == 2.0
    db = next(s for s in samples if s.label_dict.get("breaker") == "db")
    assert db.label_dict["note"] == 'a "quoted" \\ value\nx'
    bucket = next(s for s in samples if s.name.endswith("_bucket"))
    assert bucket.label_dict["le"] == "+Inf"
    assert bucket.timestamp_ms == 1700000000000
    assert math.isnan(next(s for s in samples if s.name == "weird_nan").value)
    assert next(s for s in samples if s.name == "weird_inf").value == -math.inf
    assert len(samples) == 6  # the garbage line is skipped


def rules(text: str) -> list:  # type: ignore[type-arg]
    import yaml

    return parse_rules(yaml.safe_load(text), "rules.yaml")


def test_alert_fires_after_for_and_resolves() -> None:
    rs = rules("rules:\n  - {name: backlog, metric: payments_outbox_backlog, condition: '> 100', for: 5s}\n")
    ev = AlertEvaluator(rs)
    for second, value in [(0, 50), (1, 150), (3, 150), (5, 150), (6, 150), (7, 20), (8, 150)]:
        ev.observe(second * S, parse_prometheus_text(f"payments_outbox_backlog {value}\n"))
    assert [(e.state, e.time_ns // S) for e in ev.events] == [("firing", 6), ("resolved", 7)]
    assert ev.firing() == []


def test_label_matchers_and_per_series_instances() -> None:
    rs = rules(
        "rules:\n"
        "  - name: breaker_open\n"
        "    metric: 'payments_breaker_state{breaker=~\"ri.*\", breaker!=\"db\"}'\n"
        "    condition: '>= 2'\n"
    )
    scrape = parse_prometheus_text('payments_breaker_state{breaker="risk"} 2\npayments_breaker_state{breaker="db"} 2\n')
    events = evaluate_rules(rs, [(S, scrape), (2 * S, [])])
    assert [(e.state, e.labels) for e in events] == [
        ("firing", {"breaker": "risk"}),
        ("resolved", {"breaker": "risk"}),
    ]
    assert events[0].to_dict()["time_ns"] == S


def test_condition_as_mapping() -> None:
    [rule] = rules("rules:\n  - {name: lag, metric: x, condition: {op: '<', value: 1}}\n")
    assert rule.holds(0.5)
    assert not rule.holds(1)


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("rules:\n  - {name: a, metric: x}\n", "rules[0].condition"),
        ("rules:\n  - {name: a, metric: 'x{y}', condition: '> 1'}\n", "rules[0].metric"),
        ("rules:\n  - {name: a, metric: x, condition: 'above 1'}\n", "rules[0].condition"),
        ("rules:\n  - {name: a, metric: x, condition: '> 1', for: soon}\n", "rules[0].for"),
        ("rules:\n  - {name: a, metric: x, condition: '> 1', colour: red}\n", "rules[0]"),
        ("rules:\n  - {name: a, metric: x, condition: '> 1'}\n  - {name: a, metric: y, condition: '> 1'}\n",
         "rules[1].name"),
        ("nothing: here\n", "rules.yaml"),
    ],
)
def test_rule_errors_name_file_and_field(text: str, where: str) -> None:
    with pytest.raises(AlertRuleError, match=r"rules\.yaml") as info:
        rules(text)
    assert where in str(info.value)


def test_default_rules_load(tmp_path: Path) -> None:
    from faultline.system import load_profile

    rules = load_profile("payments").alert_rules  # a system's rules come with its profile
    assert rules is not None
    names = [r.name for r in load_rules(rules)]
    assert {"outbox_backlog", "breaker_open", "stream_lag", "replica_lag"} <= set(names)
    with pytest.raises(AlertRuleError, match="cannot read"):
        load_rules(tmp_path / "none.yaml")
