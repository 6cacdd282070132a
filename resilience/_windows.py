"""Sliding windows of call outcomes for the circuit breaker, O(1) per record.

Both windows keep running totals (calls, failures, slow calls) so that reading the
failure rate never scans the window:

- `CountWindow`: the last ``size`` outcomes in a ring buffer; recording overwrites the
  oldest outcome and corrects the totals.
- `TimeWindow`: the outcomes of the last ``seconds`` seconds, aggregated in a fixed
  number of buckets; recording first retires the buckets that slid out (at most the
  bucket count, a constant), then adds to the current one.

Windows are not thread-safe by themselves: the breaker updates them under its lock.
"""

from __future__ import annotations

import itertools

from resilience._clock import Clock

__all__ = ["CountWindow", "TimeWindow", "Window"]

SUCCESS = 0
FAILURE = 1
SLOW = 2  # flag added to SUCCESS or FAILURE
SLOW_FAILURE = FAILURE | SLOW


class Window:
    """Common totals; subclasses implement `record` and `reset`."""

    __slots__ = ("calls", "failures", "slow")

    def __init__(self) -> None:
        self.calls = 0
        self.failures = 0
        self.slow = 0

    def record(self, outcome: int) -> None:
        """Add one outcome: a combination of ``FAILURE`` and ``SLOW`` flags (0 = success)."""
        raise NotImplementedError

    def reset(self) -> None:
        """Forget every outcome."""
        raise NotImplementedError


class CountWindow(Window):
    """The last ``size`` outcomes.

    Slots are handed out by an ``itertools.count`` (atomic under the GIL), which lets the
    breaker record the common case — a success replacing a success in a full window,
    which changes no total — without taking its lock (`success_is_free`).
    """

    __slots__ = ("_seq", "full", "ring", "size")

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size
        self.ring = bytearray(size)
        self._seq = itertools.count()
        self.full = False

    def success_is_free(self) -> int:
        """Take the next slot for a success; return -1 if that changed no total, else the
        slot, which the caller must then `put` under the lock."""
        slot = next(self._seq) % self.size
        if self.full and not self.ring[slot]:
            return -1
        return slot

    def record(self, outcome: int) -> None:
        self.put(next(self._seq) % self.size, outcome)

    def put(self, slot: int, outcome: int) -> None:
        """Store ``outcome`` in ``slot`` (under the lock), correcting the totals."""
        if self.full:
            old = self.ring[slot]
            if old:
                if old & FAILURE:
                    self.failures -= 1
                if old & SLOW:
                    self.slow -= 1
        else:
            self.calls += 1
            if self.calls >= self.size:
                self.full = True
        self.ring[slot] = outcome
        if outcome:
            if outcome & FAILURE:
                self.failures += 1
            if outcome & SLOW:
                self.slow += 1

    def reset(self) -> None:
        self.calls = self.failures = self.slow = 0
        self.ring = bytearray(self.size)
        self._seq = itertools.count()
        self.full = False


class TimeWindow(Window):
    """The outcomes of the last ``seconds`` seconds, in ``buckets`` equal buckets (the
    window slides by one bucket width at a time)."""

    __slots__ = ("_bucket", "_calls", "_clock", "_failures", "_slow", "_width", "buckets")

    def __init__(self, seconds: float, clock: Clock, buckets: int = 10) -> None:
        super().__init__()
        self.buckets = buckets
        self._width = seconds / buckets
        self._clock = clock
        self._calls = [0] * buckets
        self._failures = [0] * buckets
        self._slow = [0] * buckets
        self._bucket = int(clock() // self._width)

    def _advance(self) -> int:
        """Retire the buckets that slid out of the window; return the current bucket slot."""
        bucket = int(self._clock() // self._width)
        last = self._bucket
        if bucket > last:
            n = self.buckets
            for b in range(last + 1, last + 1 + min(bucket - last, n)):
                slot = b % n
                self.calls -= self._calls[slot]
                self.failures -= self._failures[slot]
                self.slow -= self._slow[slot]
                self._calls[slot] = self._failures[slot] = self._slow[slot] = 0
            self._bucket = bucket
        return bucket % self.buckets

    def record(self, outcome: int) -> None:
        slot = self._advance()
        self._calls[slot] += 1
        self.calls += 1
        if outcome:
            if outcome & FAILURE:
                self._failures[slot] += 1
                self.failures += 1
            if outcome & SLOW:
                self._slow[slot] += 1
                self.slow += 1

    def refresh(self) -> None:
        """Retire outcomes that slid out, without recording anything."""
        self._advance()

    def reset(self) -> None:
        self.calls = self.failures = self.slow = 0
        n = self.buckets
        self._calls = [0] * n
        self._failures = [0] * n
        self._slow = [0] * n
        self._bucket = int(self._clock() // self._width)
