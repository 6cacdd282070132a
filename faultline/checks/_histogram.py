"""An HdrHistogram-style latency histogram: log-bucketed, ~0.8 % worst relative error.

Values are recorded as integer microseconds. Below 256 µs every value has its own
bucket; above, each power-of-two range is split into 128 linear sub-buckets, so a
bucket is at most 1/128 of its lower bound wide. Percentiles report the bucket's
midpoint (clamped to the exact min/max), as HdrHistogram's
``value_at_percentile`` reports an equivalent value.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable

import numpy as np
import numpy.typing as npt

__all__ = ["LatencyHistogram"]

_SUB_BITS = 8
_SUB_COUNT = 1 << _SUB_BITS  # 256
_HALF = _SUB_COUNT >> 1  # 128


def _micros(latency_ms: float) -> int:
    v = int(latency_ms * 1000.0 + 0.5)
    return v if v > 0 else 0


def _index(v: int) -> int:
    if v < _SUB_COUNT:
        return v
    shift = v.bit_length() - _SUB_BITS
    return _SUB_COUNT + (shift - 1) * _HALF + ((v >> shift) - _HALF)


def _bounds(idx: int) -> tuple[int, int]:
    """Inclusive [low, high] of the values in bucket ``idx``."""
    if idx < _SUB_COUNT:
        return idx, idx
    shift = (idx - _SUB_COUNT) // _HALF + 1
    top = (idx - _SUB_COUNT) % _HALF + _HALF
    return top << shift, ((top + 1) << shift) - 1


class LatencyHistogram:
    """Record latencies in milliseconds; query percentiles in milliseconds.

    >>> h = LatencyHistogram(); h.record_many([1.0, 2.0, 3.0]); round(h.percentile(50), 2)
    2.0
    """

    __slots__ = ("_counts", "count", "max_us", "min_us", "total_us")

    def __init__(self) -> None:
        self._counts: dict[int, int] = {}
        self.count = 0
        self.total_us = 0
        self.min_us: int | None = None
        self.max_us: int | None = None

    def record(self, latency_ms: float, count: int = 1) -> None:
        """Add ``count`` observations of ``latency_ms`` (negative values count as 0)."""
        v = _micros(latency_ms)
        idx = _index(v)
        self._counts[idx] = self._counts.get(idx, 0) + count
        self.count += count
        self.total_us += v * count
        if self.min_us is None or v < self.min_us:
            self.min_us = v
        if self.max_us is None or v > self.max_us:
            self.max_us = v

    def record_many(self, latencies_ms: Iterable[float]) -> None:
        """Add many observations: sort once, then cut the sorted run at bucket bounds.

        Same buckets as :meth:`record`, but C-speed for a whole history (a million
        values cost one ``sorted`` and a few thousand bisections).
        """
        xs = sorted(latencies_ms)
        if not xs:
            return
        key = _micros
        counts = self._counts
        lo_us, hi_us = key(xs[0]), key(xs[-1])
        pos, n = 0, len(xs)
        for idx in range(_index(lo_us), _index(hi_us) + 1):
            high = _bounds(idx)[1]
            end = bisect_right(xs, high, pos, n, key=key)
            if end > pos:
                counts[idx] = counts.get(idx, 0) + (end - pos)
                pos = end
            if pos >= n:
                break
        self.count += n
        self.total_us += int(math.fsum(xs) * 1000.0)
        self.min_us = lo_us if self.min_us is None else min(self.min_us, lo_us)
        self.max_us = hi_us if self.max_us is None else max(self.max_us, hi_us)

    def record_array(self, latencies_ms: npt.NDArray[np.float64]) -> None:
        """:meth:`record_many` of a float64 array, vectorized (same buckets, same sums)."""
        if not len(latencies_ms):
            return
        us = (latencies_ms * 1000.0 + 0.5).astype(np.int64)
        np.maximum(us, 0, out=us)
        idx = us.copy()
        big = us >= _SUB_COUNT
        if big.any():
            v = us[big]
            bits = np.frexp(v.astype(np.float64))[1].astype(np.int64)  # = v.bit_length()
            shift = bits - _SUB_BITS
            idx[big] = _SUB_COUNT + (shift - 1) * _HALF + ((v >> shift) - _HALF)
        buckets, counts = np.unique(idx, return_counts=True)
        own = self._counts
        for b, c in zip(buckets.tolist(), counts.tolist(), strict=True):
            own[b] = own.get(b, 0) + c
        n = len(us)
        lo_us, hi_us = int(us.min()), int(us.max())
        self.count += n
        self.total_us += int(math.fsum(latencies_ms.tolist()) * 1000.0)
        self.min_us = lo_us if self.min_us is None else min(self.min_us, lo_us)
        self.max_us = hi_us if self.max_us is None else max(self.max_us, hi_us)

    def merge(self, other: LatencyHistogram) -> None:
        """Add every observation of ``other``."""
        for idx, c in other._counts.items():
            self._counts[idx] = self._counts.get(idx, 0) + c
        self.count += other.count
        self.total_us += other.total_us
        for v in (other.min_us, other.max_us):
            if v is not None:
                self.min_us = v if self.min_us is None else min(self.min_us, v)
                self.max_us = v if self.max_us is None else max(self.max_us, v)

    def percentile(self, p: float) -> float:
        """The latency (ms) at or below which ``p`` percent of observations fall; NaN if empty."""
        if self.count == 0 or self.min_us is None or self.max_us is None:
            return math.nan
        rank = max(1, math.ceil(self.count * min(max(p, 0.0), 100.0) / 100.0))
        seen = 0
        for idx in sorted(self._counts):
            seen += self._counts[idx]
            if seen >= rank:
                low, high = _bounds(idx)
                mid = (low + high) / 2.0
                return min(max(mid, self.min_us), self.max_us) / 1000.0
        return self.max_us / 1000.0

    @property
    def mean(self) -> float:
        """Exact mean (ms); NaN if empty."""
        return self.total_us / self.count / 1000.0 if self.count else math.nan

    def summary(self) -> dict[str, float | int]:
        """count, min, mean, p50, p90, p99, p999, max (ms)."""
        if not self.count:
            return {"count": 0}
        return {
            "count": self.count,
            "min_ms": (self.min_us or 0) / 1000.0,
            "mean_ms": round(self.mean, 3),
            "p50_ms": self.percentile(50),
            "p90_ms": self.percentile(90),
            "p99_ms": self.percentile(99),
            "p999_ms": self.percentile(99.9),
            "max_ms": (self.max_us or 0) / 1000.0,
        }
