"""Monitoring under test: alert rules, their pure evaluator and a Prometheus text parser.

The runner scrapes each service's ``/metrics`` every second and feeds the samples (on
the history clock) to an :class:`AlertEvaluator`; the resulting events go to
``CheckContext.alerts`` (as dicts) and to the report::

    rules = load_rules("alerts.yaml")
    ev = AlertEvaluator(rules)
    ev.observe(time.monotonic_ns(), parse_prometheus_text(body_of_all_services))
    ctx = CheckContext(..., alerts=[e.to_dict() for e in ev.events])
"""

from __future__ import annotations

from ._promtext import Sample, parse_prometheus_text
from ._rules import (
    AlertEvaluator,
    AlertEvent,
    AlertRule,
    AlertRuleError,
    LabelMatcher,
    evaluate_rules,
    load_rules,
    parse_rules,
)

__all__ = [
    "AlertEvaluator",
    "AlertEvent",
    "AlertRule",
    "AlertRuleError",
    "LabelMatcher",
    "Sample",
    "evaluate_rules",
    "load_rules",
    "parse_prometheus_text",
    "parse_rules",
]
