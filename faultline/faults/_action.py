"""System-specific faults: the actions of a system's profile (pause a replica's replay).

An action's ``start``/``stop`` return integer effect counters; both are merged into the
stop line, like every other fault's effect.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from faultline.history import NemesisLog

__all__ = ["ActionNemesis"]


class ActionNemesis:
    """Runs a profile's :class:`~faultline.system.Action` s against one stack."""

    def __init__(self, actions: Mapping[str, Any], stack: Any, log: NemesisLog) -> None:
        self.actions = dict(actions)
        self.stack = stack
        self.log = log
        self._active: dict[int, tuple[Any, dict[str, int]]] = {}

    def _value(self, index: int, fault: Any, **extra: Any) -> dict[str, Any]:
        action = self.actions.get(fault.action)
        return {"index": index, "name": fault.label, "fault": "action",
                "action": fault.action, "service": getattr(action, "service", None), **extra}

    def start(self, index: int, fault: Any) -> None:
        action = self.actions.get(fault.action)
        if action is None:
            raise ValueError(f"unknown action {fault.action!r}")
        # healed even if start fails half-way: stop() is safe to call
        self._active[index] = (fault, {})
        effect = dict(action.start(self.stack))
        self._active[index] = (fault, effect)
        self.log.record("start", self._value(index, fault))

    def stop(self, index: int) -> None:
        entry = self._active.pop(index, None)
        if entry is None:
            return
        fault, effect = entry
        try:
            for name, count in dict(self.actions[fault.action].stop(self.stack)).items():
                effect[name] = effect.get(name, 0) + int(count)
        finally:
            self.log.record("stop", self._value(index, fault, effect=effect))

    @property
    def active(self) -> list[str]:
        return [f.label for f, _ in self._active.values()]

    def heal_all(self) -> list[str]:
        undone: list[str] = []
        for index in list(self._active):
            with contextlib.suppress(Exception):
                self.stop(index)
                undone.append(f"fault {index}")
        return undone
