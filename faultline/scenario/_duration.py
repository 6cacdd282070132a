"""Durations as people write them: ``"90s"``, ``"2m"``, ``"500ms"``, ``"1m30s"``, ``12``."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator

__all__ = ["Duration", "format_duration", "parse_duration"]

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_WHOLE = re.compile(r"^(?:\d+(?:\.\d+)?(?:ms|s|m|h))+$")


def parse_duration(value: Any) -> float:
    """Seconds in ``value``: a number (seconds), a ``timedelta`` or a string like
    ``"90s"``, ``"2m"``, ``"500ms"``, ``"1h"``, ``"1m30s"``. Raises ``ValueError``."""
    if isinstance(value, bool):
        raise ValueError("expected a duration like '90s', '2m' or '500ms', got a boolean")
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().replace(" ", "")
        if not text or not _WHOLE.match(text):
            try:
                seconds = float(text)
            except ValueError:
                raise ValueError(
                    f"expected a duration like '90s', '2m', '500ms' or '1m30s', got {value!r}"
                ) from None
        else:
            seconds = sum(float(n) * _UNITS[u] for n, u in _PART.findall(text))
    else:
        raise ValueError(
            f"expected a duration like '90s', '2m' or '500ms', got {type(value).__name__}"
        )
    if seconds < 0:
        raise ValueError(f"a duration cannot be negative, got {value!r}")
    return seconds


def format_duration(seconds: float) -> str:
    """The short form of ``seconds``: ``90s`` -> ``"1m30s"``, ``0.5`` -> ``"500ms"``."""
    if seconds < 1:
        return f"{seconds * 1000:g}ms"
    minutes, rest = divmod(seconds, 60)
    if minutes and rest:
        return f"{int(minutes)}m{rest:g}s"
    if minutes:
        return f"{int(minutes)}m"
    return f"{rest:g}s"


#: a duration field: accepts the forms of :func:`parse_duration`, holds float seconds
Duration = Annotated[float, BeforeValidator(parse_duration)]
