"""Checker results: plain data, JSON-ready, never exceptions.

A checker reports every violation it finds as an *error record* of one ``type``, with a
``count`` and three examples (``first``, ``worst``, ``last``), as Jepsen does, plus the
smallest set of history lines and ledger rows that shows it (``evidence``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from ._columns import uniq

__all__ = ["UNKNOWN", "CheckContext", "CheckResult", "ErrorCollector", "Example", "Validity"]

Validity = Literal[True, False, "unknown"]
UNKNOWN: Literal["unknown"] = "unknown"

#: the most history lines / rows per table kept as evidence of one checker
EVIDENCE_LIMIT = 50

#: what one violation shows: (example, history lines, rows by table or None)
Example = tuple[dict[str, Any], Sequence[int], Mapping[str, Sequence[Any]] | None]


@dataclass(slots=True)
class CheckContext:
    """Everything a checker may need besides history and final state (all optional).

    ``fault_windows`` are ``faultline.checks.FaultWindow`` on the history clock; when
    empty they are derived from the nemesis lines of the history. ``baseline`` is the
    snapshot taken before load (a dict, or a ``StateSource`` opened from disk;
    transfers in it are not the drill's). ``alerts`` are
    ``AlertEvent`` dicts from ``faultline.alerts.evaluate_rules`` (``None``: rules were
    not evaluated, so expected alerts are ``unknown``). ``cache`` lets
    checkers of one run share derived indexes.
    """

    scenario: Any = None
    fault_windows: list[Any] = field(default_factory=list)
    baseline: Any = None
    alerts: list[Mapping[str, Any]] | None = None
    run_start_ns: int | None = None
    run_end_ns: int | None = None
    cache: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class CheckResult:
    """The outcome of one checker: ``valid`` is ``True``, ``False`` or ``"unknown"``.

    ``kind`` is ``"invariant"`` or ``"slo"`` (the verdict maps them to exit codes 1
    and 2). ``evidence`` is ``{"history": [line indices], "rows": {table: [ids]}}``.
    """

    name: str
    valid: Validity
    kind: str = "invariant"
    counts: dict[str, Any] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)
    evidence: dict[str, Any] = field(
        default_factory=lambda: {"history": [], "rows": {}}
    )
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``verdict.json`` stores one per checker)."""
        return {
            "name": self.name,
            "kind": self.kind,
            "valid": self.valid,
            "message": self.message,
            "counts": self.counts,
            "errors": self.errors,
            "evidence": self.evidence,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CheckResult:
        """Rebuild a result stored by :meth:`to_dict`."""
        return cls(
            name=str(data["name"]),
            valid=data["valid"],
            kind=str(data.get("kind", "invariant")),
            counts=dict(data.get("counts", {})),
            errors=list(data.get("errors", [])),
            evidence=dict(data.get("evidence", {"history": [], "rows": {}})),
            message=str(data.get("message", "")),
        )


class ErrorCollector:
    """Accumulates violations by type into ``{type, count, first, worst, last}``.

    ``add(type, example, severity=..., history=[...], rows={table: [ids]})``; the
    example with the highest ``severity`` becomes ``worst``. Evidence is capped per
    checker so a million-row violation stays readable.
    """

    __slots__ = ("_errors", "_history", "_rows")

    def __init__(self) -> None:
        self._errors: dict[str, dict[str, Any]] = {}
        self._history: set[int] = set()
        self._rows: dict[str, list[Any]] = {}

    def add(
        self,
        type_: str,
        example: dict[str, Any],
        *,
        severity: float = 0.0,
        history: Iterable[int] = (),
        rows: Mapping[str, Iterable[Any]] | None = None,
    ) -> None:
        record = self._errors.get(type_)
        if record is None:
            self._errors[type_] = {
                "type": type_,
                "count": 1,
                "first": example,
                "worst": example,
                "last": example,
                "_severity": severity,
            }
        else:
            record["count"] += 1
            record["last"] = example
            if severity > record["_severity"]:
                record["worst"] = example
                record["_severity"] = severity
        self._evidence(history, rows)

    def add_batch(
        self,
        kinds: Sequence[str],
        kind_of: Any,
        materialize: Callable[[Any], list[Example]],
        *,
        shapes: Mapping[str, tuple[bool, tuple[str, ...]]],
        severity: Any = None,
    ) -> None:
        """Add ``len(kind_of)`` violations at once, as that many :meth:`add` calls would.

        ``kind_of[i]`` indexes ``kinds``; ``severity[i]`` is violation i's severity.
        ``materialize(positions)`` builds the examples of those violations only: the
        first, worst and last of each kind and the first ones until the evidence is
        full (``shapes[kind]``: does the kind show history lines, which tables it
        shows rows of). So a million violations cost columns, not a million examples.
        """
        kind_of = np.asarray(kind_of, dtype=np.int64)
        n = len(kind_of)
        if not n:
            return
        sev = np.zeros(n) if severity is None else np.asarray(severity, dtype=np.float64)
        plan = []
        needed: set[int] = set()
        for k, kind in enumerate(kinds):
            idx = np.flatnonzero(kind_of == k)
            if not len(idx):
                continue
            worst = int(idx[int(np.argmax(sev[idx]))])
            first, last = int(idx[0]), int(idx[-1])
            needed.update((first, worst, last))
            plan.append((first, kind, len(idx), worst, last))
        plan.sort()
        examples: dict[int, dict[str, Any]] = {}
        pos, step = 0, 64
        while pos < n and not self._full(kinds, kind_of[pos:], shapes):
            batch = np.arange(pos, min(n, pos + step))
            for i, (example, history, rows) in zip(batch.tolist(), materialize(batch), strict=True):
                if i in needed:
                    examples[i] = example
                self._evidence(history, rows)
            pos, step = pos + step, step * 4
        rest = sorted(i for i in needed if i not in examples)
        if rest:
            for i, (example, _, _) in zip(rest, materialize(np.array(rest)), strict=True):
                examples[i] = example
        for first, kind, count, worst, last in plan:
            record = self._errors.get(kind)
            if record is None:
                self._errors[kind] = {
                    "type": kind,
                    "count": count,
                    "first": examples[first],
                    "worst": examples[worst],
                    "last": examples[last],
                    "_severity": float(sev[worst]),
                }
                continue
            record["count"] += count
            record["last"] = examples[last]
            if sev[worst] > record["_severity"]:
                record["worst"] = examples[worst]
                record["_severity"] = float(sev[worst])

    def _evidence(self, history: Iterable[int], rows: Mapping[str, Iterable[Any]] | None) -> None:
        if len(self._history) < EVIDENCE_LIMIT:
            self._history.update(history)
        if rows:
            for table, ids in rows.items():
                kept = self._rows.setdefault(table, [])
                for row_id in ids:
                    if len(kept) >= EVIDENCE_LIMIT:
                        break
                    if row_id not in kept:
                        kept.append(row_id)

    def _full(self, kinds: Sequence[str], ahead: Any,
              shapes: Mapping[str, tuple[bool, tuple[str, ...]]]) -> bool:
        """Would the violations ``ahead`` add no evidence any more?"""
        for k in uniq(ahead).tolist():
            uses_history, tables = shapes[kinds[k]]
            if uses_history and len(self._history) < EVIDENCE_LIMIT:
                return False
            if any(len(self._rows.get(t, ())) < EVIDENCE_LIMIT for t in tables):
                return False
        return True

    def __bool__(self) -> bool:
        return bool(self._errors)

    def records(self) -> list[dict[str, Any]]:
        """The error records, without internal fields."""
        return [
            {k: v for k, v in rec.items() if not k.startswith("_")}
            for rec in self._errors.values()
        ]

    def evidence(self) -> dict[str, Any]:
        return {"history": sorted(self._history)[:EVIDENCE_LIMIT], "rows": self._rows}

    def result(self, name: str, counts: dict[str, Any], *, kind: str = "invariant") -> CheckResult:
        """A result that is valid exactly when nothing was added."""
        errors = self.records()
        message = (
            "ok"
            if not errors
            else "; ".join(f"{e['type']} x{e['count']}" for e in errors)
        )
        return CheckResult(
            name=name,
            valid=not errors,
            kind=kind,
            counts=counts,
            errors=errors,
            evidence=self.evidence(),
            message=message,
        )
