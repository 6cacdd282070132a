"""Pipeline: policies composed in an explicit order, the first one outermost.

``Pipeline(a, b, c).call(fn)`` runs ``a(b(c(fn)))``: with ``Pipeline(Fallback(...),
breaker, Retry(...), Timeout(0.8))`` each attempt has 0.8 s, the retries happen inside
the breaker (which sees one outcome per logical call) and the fallback catches what is
left. The chain of runners is built once, in the constructor, so a call through N
policies costs N plain function calls and no allocation for the composition.

A ``pybreaker.CircuitBreaker`` may be given as a stage directly; it is wrapped in
`PyBreakerStage` (which needs pybreaker installed).
"""

from __future__ import annotations

from typing import Any

from resilience._events import Hook
from resilience._policy import AsyncRunner, Policy, Runner

__all__ = ["Pipeline"]


def _as_policy(stage: Any) -> Policy:
    if isinstance(stage, Policy):
        return stage
    module = type(stage).__module__ or ""
    if module == "pybreaker" or module.startswith("pybreaker."):
        from resilience._pybreaker import PyBreakerStage

        return PyBreakerStage(stage)
    raise TypeError(f"a Pipeline stage must be a resilience policy, got {stage!r}")


class Pipeline(Policy):
    """``Pipeline(*policies, name="pipeline")``: see the module docs. ``policies`` is the
    tuple of stages, outermost first."""

    __slots__ = ("policies",)

    def __init__(self, *policies: Any, name: str = "pipeline") -> None:
        self.policies: tuple[Policy, ...] = tuple(_as_policy(p) for p in policies)
        super().__init__(name)

    def _bind_sync(self, inner: Runner) -> Runner:
        for policy in reversed(self.policies):
            inner = policy._bind_sync(inner)
        return inner

    def _bind_async(self, inner: AsyncRunner) -> AsyncRunner:
        for policy in reversed(self.policies):
            inner = policy._bind_async(inner)
        return inner

    def add_hook(self, hook: Hook) -> None:
        """Deliver every stage's events to ``hook``."""
        for policy in self.policies:
            policy.add_hook(hook)

    def remove_hook(self, hook: Hook) -> None:
        """Stop delivering every stage's events to ``hook``."""
        for policy in self.policies:
            policy.remove_hook(hook)

    def __repr__(self) -> str:
        return f"Pipeline({', '.join(repr(p) for p in self.policies)})"
