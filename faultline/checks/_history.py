"""One pass over the history, shared by every checker of a run.

History lines follow docs/contracts.md §6. Evidence refers to a line by its 0-based
position in the history list (= line number - 1 of ``history.jsonl``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ._result import CheckContext

__all__ = [
    "KEYED_FUNCTIONS",
    "FaultWindow",
    "HistoryIndex",
    "fault_windows_from_history",
    "history_index",
    "is_error",
]

#: operations that carry an idempotency key and may move money
KEYED_FUNCTIONS = frozenset({"transfer", "replay", "replay_diff"})

# outcome codes in HistoryIndex.outcome
OK, EXPECTED_FAIL, ERROR = 0, 1, 2


def is_error(type_: str, status: Any) -> bool:
    """Does this completion count against the error rate?

    ``info`` always does (the client cannot know); a ``fail`` does when nothing was
    answered (refused before sending), on 5xx, and on 429. Business refusals (422,
    409, insufficient funds) are correct answers, not errors.
    """
    if type_ == "info":
        return True
    if type_ == "fail":
        return status is None or status >= 500 or status == 429
    return False


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


@dataclass(slots=True)
class HistoryIndex:
    """Derived views of a history, built in one pass.

    ``keyed``: idempotency key -> list of ``(line, type, f, status, body)`` completions
    (an invoke never completed counts as ``info``). ``invoked_keys``: every key invoked.
    ``start_ns``/``latency_ms``/``outcome``/``funcs``: one entry per completed
    operation, for SLOs and plots. ``nemesis``: ``(line, op)`` of fault events.
    """

    keyed: dict[str, list[tuple[int, str, str, Any, Any]]] = field(default_factory=dict)
    invoked_keys: set[str] = field(default_factory=set)
    start_ns: list[int] = field(default_factory=list)
    latency_ms: list[float] = field(default_factory=list)
    outcome: list[int] = field(default_factory=list)
    funcs: list[str] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    nemesis: list[tuple[int, Mapping[str, Any]]] = field(default_factory=list)
    first_ns: int | None = None
    last_ns: int | None = None
    operations: int = 0
    unfinished: int = 0


def _build(history: Sequence[Mapping[str, Any]]) -> HistoryIndex:
    ix = HistoryIndex()
    keyed = ix.keyed
    invoked_keys = ix.invoked_keys
    start_ns, latency_ms, outcome, funcs, lines = (
        ix.start_ns,
        ix.latency_ms,
        ix.outcome,
        ix.funcs,
        ix.lines,
    )
    pending: dict[Any, tuple[int, Mapping[str, Any]]] = {}
    first = last = None
    for pos, op in enumerate(history):
        proc = op.get("process")
        t = op.get("time")
        if t is not None:
            if first is None:
                first = t
            last = t
        if proc == "nemesis":
            ix.nemesis.append((pos, op))
            continue
        type_ = op["type"]
        if type_ == "invoke":
            pending[proc] = (pos, op)
            key = op.get("key")
            if key is not None:
                invoked_keys.add(key)
            continue
        inv = pending.pop(proc, None)
        f = op.get("f")
        status = op.get("status")
        key = op.get("key")
        if key is None and inv is not None:
            key = inv[1].get("key")
        if key is not None and f in KEYED_FUNCTIONS:
            entry = (pos, type_, f, status, op.get("body"))
            bucket = keyed.get(key)
            if bucket is None:
                keyed[key] = [entry]
            else:
                bucket.append(entry)
        lat = op.get("latency_ms")
        t_inv = inv[1].get("time") if inv is not None else None
        if lat is None:
            lat = (t - t_inv) / 1e6 if (t is not None and t_inv is not None) else 0.0
        if t_inv is None:
            t_inv = (t - int(lat * 1e6)) if t is not None else 0
        start_ns.append(t_inv)
        latency_ms.append(lat)
        if type_ == "ok":
            outcome.append(OK)
        elif is_error(type_, status):
            outcome.append(ERROR)
        else:
            outcome.append(EXPECTED_FAIL)
        funcs.append(f or "")
        lines.append(pos)
    # an operation invoked and never completed is indeterminate: Jepsen's info
    for pos, op in pending.values():
        ix.unfinished += 1
        key = op.get("key")
        f = op.get("f")
        if key is not None and f in KEYED_FUNCTIONS:
            keyed.setdefault(key, []).append((pos, "info", f, None, None))
    ix.first_ns, ix.last_ns = first, last
    ix.operations = len(outcome) + ix.unfinished
    return ix


def history_index(history: Sequence[Mapping[str, Any]], ctx: CheckContext) -> HistoryIndex:
    """The run's :class:`HistoryIndex`, built once and cached in ``ctx.cache``."""
    cached = ctx.cache.get("history_index")
    if cached is None or cached[0] is not history:
        cached = (history, _build(history))
        ctx.cache["history_index"] = cached
    ix: HistoryIndex = cached[1]
    return ix


def fault_windows_from_history(history: Sequence[Mapping[str, Any]]) -> list[FaultWindow]:
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


def context_windows(history: Sequence[Mapping[str, Any]], ctx: CheckContext) -> list[FaultWindow]:
    """Fault windows from the context, else from the history's nemesis lines."""
    if ctx.fault_windows:
        return [
            w if isinstance(w, FaultWindow) else FaultWindow(**w) for w in ctx.fault_windows
        ]
    cached = ctx.cache.get("fault_windows")
    if cached is None or cached[0] is not history:
        cached = (history, fault_windows_from_history(history))
        ctx.cache["fault_windows"] = cached
    windows: list[FaultWindow] = cached[1]
    return windows
