"""Alert rules (a small YAML file) and their evaluation over scraped samples.

Semantics follow Prometheus alerting rules: a series whose condition holds becomes
*pending*; after it has held for ``for`` it is *firing* (an ``AlertEvent`` with state
``firing``); when the condition stops holding — or the series disappears from a
scrape — a firing alert is ``resolved``. Each matching label set is its own instance.
"""

from __future__ import annotations

import operator
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from faultline.scenario import parse_duration

from ._promtext import Sample

__all__ = [
    "AlertEvaluator",
    "AlertEvent",
    "AlertRule",
    "AlertRuleError",
    "LabelMatcher",
    "evaluate_rules",
    "load_rules",
    "parse_rules",
]

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}
_SELECTOR = re.compile(r"^\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(?:\{(.*)\})?\s*$")
_MATCHER = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*(?:,|$)')
_CONDITION = re.compile(r"^\s*(>=|<=|==|!=|>|<)\s*(-?[0-9.eE+-]+|NaN|[+-]?Inf)\s*$")


class AlertRuleError(ValueError):
    """An alert rule file that cannot be used; the message names file and rule."""


@dataclass(frozen=True, slots=True)
class LabelMatcher:
    """``label op "value"`` with op ``=``, ``!=``, ``=~``, ``!~`` (regexes fully anchored)."""

    label: str
    op: str
    value: str

    def matches(self, labels: Mapping[str, str]) -> bool:
        have = labels.get(self.label, "")
        if self.op == "=":
            return have == self.value
        if self.op == "!=":
            return have != self.value
        hit = re.fullmatch(self.value, have) is not None
        return hit if self.op == "=~" else not hit


@dataclass(frozen=True, slots=True)
class AlertRule:
    """``metric{matchers} op threshold`` held for ``for_s`` seconds."""

    name: str
    metric: str
    matchers: tuple[LabelMatcher, ...]
    op: str
    threshold: float
    for_s: float = 0.0
    description: str = ""

    def holds(self, value: float) -> bool:
        return _OPS[self.op](value, self.threshold)

    def selects(self, sample: Sample) -> bool:
        if sample.name != self.metric:
            return False
        labels = sample.label_dict
        return all(m.matches(labels) for m in self.matchers)


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """An alert instance changed state at ``time_ns`` (the history clock)."""

    alert: str
    state: str  # "firing" | "resolved"
    time_ns: int
    labels: dict[str, str] = field(default_factory=dict)
    value: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "alert": self.alert,
            "state": self.state,
            "time_ns": self.time_ns,
            "labels": self.labels,
            "value": self.value,
        }


def _parse_selector(text: str) -> tuple[str, tuple[LabelMatcher, ...]]:
    m = _SELECTOR.match(text)
    if not m:
        raise ValueError(f"expected a metric selector like 'name{{label=\"v\"}}', got {text!r}")
    name, body = m.group(1), m.group(2)
    matchers: list[LabelMatcher] = []
    if body and body.strip():
        pos = 0
        while pos < len(body):
            mm = _MATCHER.match(body, pos)
            if not mm:
                raise ValueError(f"cannot parse label matchers in {text!r}")
            value = mm.group(3).replace('\\"', '"').replace("\\\\", "\\")
            matchers.append(LabelMatcher(mm.group(1), mm.group(2), value))
            pos = mm.end()
    return name, tuple(matchers)


def _parse_condition(cond: Any) -> tuple[str, float]:
    if isinstance(cond, Mapping):
        op, value = cond.get("op"), cond.get("value")
        if op not in _OPS or not isinstance(value, int | float):
            raise ValueError(f"expected {{op: one of {' '.join(_OPS)}, value: number}}, got {cond!r}")
        return str(op), float(value)
    m = _CONDITION.match(str(cond))
    if not m:
        raise ValueError(f"expected a condition like '> 100', got {cond!r}")
    return m.group(1), float(m.group(2))


def parse_rules(data: Any, file: str = "<rules>") -> list[AlertRule]:
    """Rules from parsed YAML (``{rules: [...]}`` or a bare list)."""
    items = data.get("rules") if isinstance(data, Mapping) else data
    if not isinstance(items, list):
        raise AlertRuleError(f"{file}: expected 'rules:' with a list of rules")
    rules: list[AlertRule] = []
    seen: set[str] = set()
    for i, item in enumerate(items):
        where = f"{file}: rules[{i}]"
        if not isinstance(item, Mapping):
            raise AlertRuleError(f"{where}: expected a mapping with name, metric, condition, for")
        unknown = set(item) - {"name", "metric", "condition", "for", "description"}
        if unknown:
            raise AlertRuleError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
        for required in ("name", "metric", "condition"):
            if required not in item:
                raise AlertRuleError(f"{where}.{required}: missing required field")
        name = str(item["name"])
        if name in seen:
            raise AlertRuleError(f"{where}.name: duplicate rule {name!r}")
        seen.add(name)
        try:
            metric, matchers = _parse_selector(str(item["metric"]))
        except ValueError as exc:
            raise AlertRuleError(f"{where}.metric: {exc}") from None
        try:
            op, threshold = _parse_condition(item["condition"])
        except ValueError as exc:
            raise AlertRuleError(f"{where}.condition: {exc}") from None
        try:
            for_s = parse_duration(item.get("for", 0))
        except ValueError as exc:
            raise AlertRuleError(f"{where}.for: {exc}") from None
        rules.append(
            AlertRule(name, metric, matchers, op, threshold, for_s, str(item.get("description", "")))
        )
    return rules


def load_rules(path: str | os.PathLike[str]) -> list[AlertRule]:
    """Read an alert rule file; raises :class:`AlertRuleError` with a readable message."""
    file = os.fspath(path)
    try:
        data = yaml.safe_load(Path(file).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise AlertRuleError(f"{file}: cannot read rules: {exc}") from None
    return parse_rules(data, file)


class AlertEvaluator:
    """Feed one scrape at a time (``observe``); collect :class:`AlertEvent` s."""

    def __init__(self, rules: Iterable[AlertRule]) -> None:
        self.rules = list(rules)
        self.events: list[AlertEvent] = []
        # (rule name, labels) -> [pending since ns, firing?]
        self._active: dict[tuple[str, tuple[tuple[str, str], ...]], list[Any]] = {}

    def observe(self, time_ns: int, samples: Iterable[Sample]) -> list[AlertEvent]:
        """Evaluate every rule against one scrape; return the events it caused."""
        samples = list(samples)
        new: list[AlertEvent] = []
        for rule in self.rules:
            holding: dict[tuple[tuple[str, str], ...], float] = {}
            for s in samples:
                if rule.selects(s) and rule.holds(s.value):
                    holding[s.labels] = s.value
            for labels, value in holding.items():
                key = (rule.name, labels)
                state = self._active.get(key)
                if state is None:
                    state = self._active[key] = [time_ns, False]
                if not state[1] and time_ns - state[0] >= rule.for_s * 1e9:
                    state[1] = True
                    new.append(AlertEvent(rule.name, "firing", time_ns, dict(labels), value))
            for key in [k for k in self._active if k[0] == rule.name and k[1] not in holding]:
                state = self._active.pop(key)
                if state[1]:
                    new.append(AlertEvent(rule.name, "resolved", time_ns, dict(key[1]), None))
        self.events.extend(new)
        return new

    def firing(self) -> list[str]:
        """Names of the alerts firing now."""
        return sorted({k[0] for k, v in self._active.items() if v[1]})


def evaluate_rules(
    rules: Iterable[AlertRule], scrapes: Iterable[tuple[int, Iterable[Sample]]]
) -> list[AlertEvent]:
    """Evaluate ``rules`` over ``(time_ns, samples)`` scrapes in time order (pure)."""
    ev = AlertEvaluator(rules)
    for time_ns, samples in sorted(scrapes, key=lambda s: s[0]):
        ev.observe(time_ns, samples)
    return ev.events
