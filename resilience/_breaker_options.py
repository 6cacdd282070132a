"""Configuration of the circuit breaker: state names, defaults, validated options."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from resilience._clock import seconds
from resilience._predicates import ExceptionFilter, exception_predicate

__all__ = ["BreakerMetrics", "BreakerOptions"]

CLOSED: Final = "closed"
OPEN: Final = "open"
HALF_OPEN: Final = "half_open"
FORCED_OPEN: Final = "forced_open"
DISABLED: Final = "disabled"

DEFAULT_FAILURE_RATE_THRESHOLD = 0.5
DEFAULT_MINIMUM_CALLS = 10
DEFAULT_WINDOW = 100
DEFAULT_WINDOW_TYPE = "count"
DEFAULT_SLOW_CALL_RATE_THRESHOLD = 1.0
DEFAULT_OPEN_DURATION = 30.0
DEFAULT_HALF_OPEN_CALLS = 1
DEFAULT_STORE_SYNC_INTERVAL = 1.0

_IGNORED = -1
_NOT_RECORDED = -1  # generation of calls admitted while disabled


def _fraction(value: float, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
        raise ValueError(f"{what} must be a fraction in (0, 1] (0.5 means 50%), got {value!r}")
    return float(value)


def _positive_int(value: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{what} must be an integer >= 1, got {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class BreakerOptions:
    """The validated configuration of a `CircuitBreaker` (see its docstring)."""

    failure_rate_threshold: float = DEFAULT_FAILURE_RATE_THRESHOLD
    minimum_calls: int = DEFAULT_MINIMUM_CALLS
    window: float = DEFAULT_WINDOW
    window_type: str = DEFAULT_WINDOW_TYPE
    slow_call_duration: float | None = None
    slow_call_rate_threshold: float = DEFAULT_SLOW_CALL_RATE_THRESHOLD
    open_duration: float = DEFAULT_OPEN_DURATION
    half_open_calls: int = DEFAULT_HALF_OPEN_CALLS
    record: ExceptionFilter = Exception
    ignore: ExceptionFilter = ()
    failure_result: Callable[[Any], bool] | None = None
    store_sync_interval: float = DEFAULT_STORE_SYNC_INTERVAL

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        _fraction(self.failure_rate_threshold, "failure_rate_threshold")
        _fraction(self.slow_call_rate_threshold, "slow_call_rate_threshold")
        _positive_int(self.minimum_calls, "minimum_calls")
        _positive_int(self.half_open_calls, "half_open_calls")
        if self.window_type == "count":
            _positive_int(self.window, "window (a count window's size in calls)")  # type: ignore[arg-type]
            if self.window < self.minimum_calls:
                raise ValueError(
                    f"a count window of {self.window} calls can never hold minimum_calls="
                    f"{self.minimum_calls}; make window >= minimum_calls"
                )
        elif self.window_type == "time":
            set_(
                self,
                "window",
                seconds(self.window, "window (a time window's length)", allow_zero=False),
            )
        else:
            raise ValueError(f'window_type must be "count" or "time", got {self.window_type!r}')
        if self.slow_call_duration is not None:
            set_(
                self,
                "slow_call_duration",
                seconds(self.slow_call_duration, "slow_call_duration", allow_zero=False),
            )
        set_(self, "open_duration", seconds(self.open_duration, "open_duration", allow_zero=False))
        set_(self, "store_sync_interval", seconds(self.store_sync_interval, "store_sync_interval"))
        exception_predicate(self.record, "record")
        if self.ignore != ():
            exception_predicate(self.ignore, "ignore")
        if self.failure_result is not None and not callable(self.failure_result):
            raise TypeError(
                f"failure_result must be a predicate on the result, got {self.failure_result!r}"
            )


@dataclass(frozen=True, slots=True)
class BreakerMetrics:
    """A snapshot of the breaker's window: ``calls`` recorded, of which ``failures`` and
    ``slow_calls``; rates are ``failures/calls`` (0.0 when empty)."""

    state: str
    calls: int
    failures: int
    slow_calls: int
    failure_rate: float
    slow_call_rate: float
