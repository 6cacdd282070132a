"""Time, injected.

Every policy takes a ``clock`` (a zero-argument callable returning seconds, monotonic by
default) and, where it waits, a ``sleep`` / ``async_sleep``. `FakeClock` provides all
three, so tests move time forward by hand and never really sleep.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta

__all__ = ["AsyncSleep", "Clock", "FakeClock", "Sleep", "seconds"]

Clock = Callable[[], float]
Sleep = Callable[[float], None]
AsyncSleep = Callable[[float], Awaitable[None]]

monotonic: Clock = time.monotonic
wall: Clock = time.time
real_sleep: Sleep = time.sleep
real_async_sleep: AsyncSleep = asyncio.sleep


def seconds(value: float | timedelta, what: str, *, allow_zero: bool = True) -> float:
    """Normalise a duration given as seconds or a ``timedelta``; reject negatives."""
    if isinstance(value, timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{what} must be a number of seconds or a timedelta, got {value!r}")
    value = float(value)
    if value != value or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{what} must be {bound} seconds, got {value!r}")
    return value


class FakeClock:
    """A manual clock: ``clock()`` is the time, ``advance(s)`` moves it, and
    ``sleep``/``async_sleep`` advance it instead of waiting.

    Pass the instance as ``clock=``, ``clock.sleep`` as ``sleep=`` and
    ``clock.async_sleep`` as ``async_sleep=``. ``sleeps`` records every requested sleep.
    """

    __slots__ = ("now", "sleeps")

    def __init__(self, start: float = 1000.0) -> None:
        self.now = float(start)
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``."""
        self.now += seconds

    def sleep(self, seconds: float) -> None:
        """Record the sleep and advance time, without waiting."""
        self.sleeps.append(seconds)
        self.now += seconds

    async def async_sleep(self, seconds: float) -> None:
        """Record the sleep, advance time and yield to the loop once, without waiting."""
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)
