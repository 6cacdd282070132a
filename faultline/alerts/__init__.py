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

from pathlib import Path as _Path

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

#: the rules a drill evaluates when its scenario names none
DEFAULT_RULES_PATH = _Path(__file__).with_name("default_rules.yaml")

__all__ = [
    "DEFAULT_RULES_PATH",
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
