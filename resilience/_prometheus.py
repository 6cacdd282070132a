"""Prometheus metrics from policy events: `PrometheusHook`.

::

    hook = PrometheusHook()                 # or PrometheusHook(registry=my_registry)
    hook.attach(breaker)                    # = breaker.add_hook(hook) + initial state
    pipeline.add_hook(hook)                 # every stage of a pipeline

Metrics (``namespace`` defaults to ``resilience``; ``name`` is the policy's name)::

    resilience_calls_total{name, outcome}            counter  breaker-recorded calls:
        success | failure | slow_success | slow_failure | ignored, and rejected
    resilience_rejections_total{name, policy, reason}   counter  every CallRejected
    resilience_breaker_state{name, state}            gauge    1 for the current state, 0
        for the others (closed, open, half_open, forced_open, disabled)
    resilience_breaker_transitions_total{name, old, new}   counter
    resilience_breaker_store_degraded{name}          gauge    1 while the shared store fails
    resilience_retries_total{name}                   counter  retries scheduled
    resilience_retry_exhausted_total{name, reason}   counter  attempts | budget
    resilience_fallbacks_total{name}                 counter
    resilience_hedges_total{name}                    counter

``prometheus_client`` is imported when the first hook is built, never by
``import resilience``. Metrics are registered once per registry, so any number of hooks
(one per service component, say) can share a registry without "Duplicated timeseries".
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import Any

from resilience._events import (
    BreakerStateChanged,
    BreakerStoreDegraded,
    BreakerStoreRecovered,
    CallRecorded,
    CallRejected,
    Event,
    FallbackUsed,
    HedgeLaunched,
    RetryBudgetExhausted,
    RetryExhausted,
    RetryScheduled,
)

__all__ = ["PrometheusHook"]

DEFAULT_NAMESPACE = "resilience"
BREAKER_STATES = ("closed", "open", "half_open", "forced_open", "disabled")

_registered: weakref.WeakKeyDictionary[Any, dict[str, _Metrics]] = weakref.WeakKeyDictionary()
_registered_lock = threading.Lock()


class _Metrics:
    """The metric families of one namespace in one registry."""

    def __init__(self, namespace: str, registry: Any) -> None:
        from prometheus_client import Counter, Gauge

        def counter(name: str, doc: str, labels: tuple[str, ...]) -> Any:
            return Counter(name, doc, labels, namespace=namespace, registry=registry)

        def gauge(name: str, doc: str, labels: tuple[str, ...]) -> Any:
            return Gauge(name, doc, labels, namespace=namespace, registry=registry)

        self.calls = counter(
            "calls", "Calls through a circuit breaker, by outcome", ("name", "outcome")
        )
        self.rejections = counter(
            "rejections", "Calls refused by a policy", ("name", "policy", "reason")
        )
        self.state = gauge(
            "breaker_state", "1 for the breaker's current state, 0 otherwise", ("name", "state")
        )
        self.transitions = counter(
            "breaker_transitions", "Circuit breaker state transitions", ("name", "old", "new")
        )
        self.degraded = gauge(
            "breaker_store_degraded",
            "1 while the breaker's shared state store is failing",
            ("name",),
        )
        self.retries = counter("retries", "Retries scheduled", ("name",))
        self.exhausted = counter(
            "retry_exhausted", "Retry gave up (attempts/deadline or budget)", ("name", "reason")
        )
        self.fallbacks = counter("fallbacks", "Results produced by a fallback", ("name",))
        self.hedges = counter("hedges", "Hedged attempts launched", ("name",))


def _metrics_for(registry: Any, namespace: str) -> _Metrics:
    with _registered_lock:
        by_namespace = _registered.get(registry)
        if by_namespace is None:
            by_namespace = _registered[registry] = {}
        metrics = by_namespace.get(namespace)
        if metrics is None:
            metrics = by_namespace[namespace] = _Metrics(namespace, registry)
        return metrics


class PrometheusHook:
    """A hook (``policy.add_hook(hook)``) that turns events into Prometheus metrics.

    ``registry`` defaults to ``prometheus_client.REGISTRY``; ``namespace`` prefixes every
    metric name. See the module docs for the metrics. Label children are cached, so an
    event costs one dict lookup and one ``inc``/``set``.
    """

    __slots__ = ("_children", "_dispatch", "metrics", "namespace", "registry")

    def __init__(self, *, registry: Any = None, namespace: str = DEFAULT_NAMESPACE) -> None:
        if registry is None:
            from prometheus_client import REGISTRY

            registry = REGISTRY
        self.registry = registry
        self.namespace = namespace
        self.metrics = _metrics_for(registry, namespace)
        self._children: dict[tuple[Any, ...], Any] = {}
        self._dispatch: dict[type[Event], Callable[[Any], None]] = {
            CallRecorded: self._on_recorded,
            CallRejected: self._on_rejected,
            BreakerStateChanged: self._on_state_changed,
            BreakerStoreDegraded: self._on_degraded,
            BreakerStoreRecovered: self._on_recovered,
            RetryScheduled: self._on_retry,
            RetryExhausted: self._on_exhausted,
            RetryBudgetExhausted: self._on_budget_exhausted,
            FallbackUsed: self._on_fallback,
            HedgeLaunched: self._on_hedge,
        }

    def __call__(self, event: Event) -> None:
        """Update the metrics for ``event`` (unknown event types are ignored)."""
        handler = self._dispatch.get(type(event))
        if handler is not None:
            handler(event)

    def attach(self, policy: Any) -> None:
        """``policy.add_hook(self)``, and publish a breaker's current state right away
        (the state gauge otherwise appears only at the first transition)."""
        policy.add_hook(self)
        state = getattr(policy, "state", None)
        name = getattr(policy, "name", None)
        if isinstance(state, str) and isinstance(name, str):
            self._set_state(name, state)
            self._child(self.metrics.degraded, name).set(0)

    # -- handlers ------------------------------------------------------------------------------
    def _child(self, family: Any, *labels: str) -> Any:
        key = (id(family), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = family.labels(*labels)
        return child

    def _set_state(self, name: str, state: str) -> None:
        gauge = self.metrics.state
        for candidate in BREAKER_STATES:
            self._child(gauge, name, candidate).set(1 if candidate == state else 0)
        if state not in BREAKER_STATES:
            self._child(gauge, name, state).set(1)

    def _on_recorded(self, event: CallRecorded) -> None:
        self._child(self.metrics.calls, event.name, event.outcome).inc()

    def _on_rejected(self, event: CallRejected) -> None:
        m = self.metrics
        self._child(m.rejections, event.name, event.policy, event.reason).inc()
        if event.policy == "circuit_breaker":
            self._child(m.calls, event.name, "rejected").inc()

    def _on_state_changed(self, event: BreakerStateChanged) -> None:
        self._child(self.metrics.transitions, event.name, event.old, event.new).inc()
        self._set_state(event.name, event.new)

    def _on_degraded(self, event: BreakerStoreDegraded) -> None:
        self._child(self.metrics.degraded, event.name).set(1)

    def _on_recovered(self, event: BreakerStoreRecovered) -> None:
        self._child(self.metrics.degraded, event.name).set(0)

    def _on_retry(self, event: RetryScheduled) -> None:
        self._child(self.metrics.retries, event.name).inc()

    def _on_exhausted(self, event: RetryExhausted) -> None:
        self._child(self.metrics.exhausted, event.name, "attempts").inc()

    def _on_budget_exhausted(self, event: RetryBudgetExhausted) -> None:
        self._child(self.metrics.exhausted, event.name, "budget").inc()

    def _on_fallback(self, event: FallbackUsed) -> None:
        self._child(self.metrics.fallbacks, event.name).inc()

    def _on_hedge(self, event: HedgeLaunched) -> None:
        self._child(self.metrics.hedges, event.name).inc()

    def __repr__(self) -> str:
        return f"<PrometheusHook namespace={self.namespace!r}>"
