"""Fault windows on the history clock, and what counts as an error of an operation."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec
import orjson

from faultline.history import is_error

from ._columns import MISSING

__all__ = ["FaultWindow", "fault_windows_from_history", "is_error", "plain"]


def plain(value: Any) -> Any:
    """A field's value as ``json.loads`` would give it (raw text parsed, absent -> None)."""
    if value is MISSING:
        return None
    if isinstance(value, msgspec.Raw):
        return orjson.loads(bytes(value))
    return value


@dataclass(slots=True)
class FaultWindow:
    """One injected fault on the history clock (``end_ns`` None = never healed)."""

    index: int | None
    name: str
    start_ns: int
    end_ns: int | None
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "name": self.name,
            "start_ns": self.start_ns,
            "end_ns": self.end_ns,
            "detail": self.detail,
        }


def fault_windows_from_history(history: Iterable[Mapping[str, Any]]) -> list[FaultWindow]:
    """Pair nemesis ``start``/``stop`` lines into fault windows.

    A start and a stop belong together when their ``value`` has the same ``index``
    (the fault's position in the scenario) or, without one, the same ``fault`` name
    and target (``hop``/``service``).
    """
    open_: dict[Any, FaultWindow] = {}
    windows: list[FaultWindow] = []
    for op in history:
        if op.get("process") != "nemesis":
            continue
        value = op.get("value") or {}
        ident = value.get("index")
        if ident is None:
            ident = (value.get("fault"), value.get("hop"), value.get("service"))
        t = op.get("time")
        if t is None:
            continue
        if op.get("f") == "start":
            name = str(value.get("name") or value.get("fault") or "fault")
            window = FaultWindow(
                index=value.get("index"), name=name, start_ns=t, end_ns=None, detail=dict(value)
            )
            open_[ident] = window
            windows.append(window)
        elif op.get("f") == "stop":
            closing = open_.pop(ident, None)
            if closing is not None:
                closing.end_ns = t
    windows.sort(key=lambda w: w.start_ns)
    return windows
