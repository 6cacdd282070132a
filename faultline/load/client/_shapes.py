"""Load profiles of the drills, as pure functions of the elapsed time.

``users_at(spec, t)`` is the number of users the profile wants ``t`` seconds into the
load, or ``None`` once the load is over. The locustfile wraps it in a single
``LoadTestShape`` (Locust picks up every shape class it finds in a locustfile, so the
profiles themselves are plain functions here, testable without importing Locust).

Profiles:

- ``steady``: ``users`` for the whole duration.
- ``ramp``: from one user up to ``users`` linearly over the first half, then hold.
- ``spike``: ``users``, and ``users * multiplier`` (default 3) from ``spike.at`` for
  ``spike.for`` (default: the middle third of the run).
- ``soak``: ``users`` for a long duration (the same as steady; the name says the intent:
  leaks, growing backlogs and slow drift show up only over time).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

__all__ = ["PROFILES", "ShapeSpec", "users_at"]

PROFILES = ("steady", "ramp", "spike", "soak")


@dataclass(frozen=True, slots=True)
class ShapeSpec:
    """What a shape needs from the scenario's ``load`` (seconds, users)."""

    profile: str
    users: int
    duration: float
    spawn_rate: float
    spike_at: float | None = None
    spike_for: float | None = None
    multiplier: float = 3.0

    def __post_init__(self) -> None:
        if self.profile not in PROFILES:
            raise ValueError(f"unknown load profile {self.profile!r}; expected one of {PROFILES}")
        if self.users < 1 or self.duration <= 0 or self.spawn_rate <= 0:
            raise ValueError("users, duration and spawn_rate must be positive")

    @classmethod
    def from_load(cls, load: dict[str, Any]) -> ShapeSpec:
        """From the JSON form of ``Scenario.load`` (``model_dump(by_alias=True)``)."""
        users = int(load.get("users", 10))
        spike = load.get("spike") or {}
        return cls(
            profile=str(load.get("profile", "steady")),
            users=users,
            duration=float(load.get("duration", 60.0)),
            spawn_rate=float(load.get("spawn_rate") or users),
            spike_at=spike.get("at"),
            spike_for=spike.get("for", spike.get("for_")),
            multiplier=float(spike.get("multiplier", 3.0)),
        )

    @property
    def peak_users(self) -> int:
        """The most users the profile ever asks for."""
        if self.profile == "spike":
            return max(self.users, math.ceil(self.users * self.multiplier))
        return self.users

    def spike_window(self) -> tuple[float, float]:
        """``(start, end)`` of the spike in seconds from the load start."""
        at = self.spike_at if self.spike_at is not None else self.duration / 3
        length = self.spike_for if self.spike_for is not None else self.duration / 3
        return at, at + length


def users_at(spec: ShapeSpec, t: float) -> int | None:
    """Users wanted at ``t`` seconds (``None``: the load is over)."""
    if t >= spec.duration:
        return None
    if spec.profile == "ramp":
        half = spec.duration / 2
        if t >= half:
            return spec.users
        return max(1, math.ceil(spec.users * t / half))
    if spec.profile == "spike":
        start, end = spec.spike_window()
        if start <= t < end:
            return spec.peak_users
    return spec.users
