"""Checker results: plain data, JSON-ready, never exceptions.

A checker reports every violation it finds as an *error record* of one ``type``, with a
``count`` and three examples (``first``, ``worst``, ``last``), as Jepsen does, plus the
smallest set of history lines and ledger rows that shows it (``evidence``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["UNKNOWN", "CheckContext", "CheckResult", "ErrorCollector", "Validity"]

Validity = Literal[True, False, "unknown"]
UNKNOWN: Literal["unknown"] = "unknown"

#: the most history lines / rows per table kept as evidence of one checker
EVIDENCE_LIMIT = 50


@dataclass(slots=True)
class CheckContext:
    """Everything a checker may need besides history and final state (all optional).

    ``fault_windows`` are ``faultline.checks.FaultWindow`` on the history clock; when
    empty they are derived from the nemesis lines of the history. ``baseline`` is the
    snapshot taken before load (transfers in it are not the drill's). ``alerts`` are
    ``AlertEvent`` dicts from ``faultline.alerts.evaluate_rules`` (``None``: rules were
    not evaluated, so expected alerts are ``unknown``). ``cache`` lets
    checkers of one run share derived indexes.
    """

    scenario: Any = None
    fault_windows: list[Any] = field(default_factory=list)
    baseline: Mapping[str, Any] | None = None
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
