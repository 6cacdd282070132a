"""One pass over the history, shared by every checker of a run.

History lines follow docs/contracts.md §6. Evidence refers to a line by its 0-based
position in the history list (= line number - 1 of ``history.jsonl``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import islice
from operator import le
from typing import Any

from ._result import CheckContext

__all__ = [
    "KEYED_FUNCTIONS",
    "FaultWindow",
    "HistoryIndex",
    "fault_windows_from_history",
    "history_index",
    "is_error",
    "ops_by_start",
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

    Keyed operations (``transfer``, ``replay``, ``replay_diff``), by idempotency key:
    ``ok_first`` (first ``ok`` of a transfer or same-body replay: ``(line, status,
    body)``; its keys are not in history order), ``info_first`` and ``fail_first``
    (line; an invoke that never completed counts as ``info``), ``replay_oks`` (every
    same-body replay answered ``ok``: ``(line, key, status, body)``), ``diff_accepted``
    (different-body replays answered 2xx), ``diff_replays`` (how many there were),
    ``invoked_keys`` (keys of invokes that never completed; completed ones are in the
    dicts above).

    Per completed operation, in history order (for SLOs and plots): ``start_ns``
    (invoke time; for an operation that waited past its constant-arrival-rate slot,
    the slot), ``latency_ms``, ``outcome`` (``OK``/``EXPECTED_FAIL``/``ERROR``).
    ``nemesis``: ``(line, op)`` of fault events; ``nemesis_complete`` is False when some
    nemesis line is typed ``invoke`` and so is not among them.
    """

    ok_first: dict[str, tuple[int, Any, Any]] = field(default_factory=dict)
    info_first: dict[str, int] = field(default_factory=dict)
    fail_first: dict[str, int] = field(default_factory=dict)
    replay_oks: list[tuple[int, str, Any, Any]] = field(default_factory=list)
    diff_accepted: list[tuple[int, str, Any, Any]] = field(default_factory=list)
    diff_replays: int = 0
    invoked_keys: set[str] = field(default_factory=set)
    start_ns: list[float] = field(default_factory=list)
    latency_ms: list[float] = field(default_factory=list)
    outcome: list[int] = field(default_factory=list)
    nemesis: list[tuple[int, Mapping[str, Any]]] = field(default_factory=list)
    first_ns: int | None = None
    last_ns: int | None = None
    operations: int = 0
    unfinished: int = 0
    nemesis_complete: bool = True

    @property
    def keys(self) -> set[str]:
        """Every idempotency key with a keyed operation."""
        return set(self.ok_first) | set(self.info_first) | set(self.fail_first)


def _build(history: Sequence[Mapping[str, Any]]) -> HistoryIndex:
    ix = HistoryIndex()
    info_first, fail_first = ix.info_first, ix.fail_first
    replay_oks, diff_accepted = ix.replay_oks, ix.diff_accepted
    start_append = ix.start_ns.append
    lat_append = ix.latency_ms.append
    out_append = ix.outcome.append
    # every ok answer, in history order: a dict insert per line would be the dearest
    # step of this loop, so ``ok_first`` is built after it, in C
    ok_keys: list[Any] = []
    ok_answers: list[tuple[int, Any, Any]] = []
    ok_key_append, ok_answer_append = ok_keys.append, ok_answers.append
    pending: dict[Any, int] = {}
    pending_pop = pending.pop
    keyed = KEYED_FUNCTIONS
    diff_replays = 0
    for pos, op in enumerate(history):
        type_ = op["type"]
        proc = op.get("process")
        if type_ == "invoke":
            pending[proc] = pos
            continue
        if proc == "nemesis":
            ix.nemesis.append((pos, op))
            continue
        inv = pending_pop(proc, None)
        f = op.get("f")
        status = op.get("status")
        t = op.get("time")
        lat = op.get("latency_ms")
        t_inv = history[inv].get("time") if inv is not None else None
        if t is None:
            t = t_inv if t_inv is not None else 0
        if lat is None:
            lat = (t - t_inv) / 1e6 if t_inv is not None else 0.0
        # an operation that waited past its slot (constant arrival rate: its latency
        # counts from the slot, 'service_ms' is the request alone) belongs to the
        # phase it was due in, not to the one it was finally sent in
        if t_inv is None or "service_ms" in op:
            start_append(t - lat * 1e6)
        else:
            start_append(t_inv)
        lat_append(lat)
        if type_ == "ok":
            out_append(OK)
        elif type_ == "info" or status is None or status >= 500 or status == 429:
            out_append(ERROR)
        else:
            out_append(EXPECTED_FAIL)
        if f not in keyed:
            continue
        key = op.get("key")
        if key is None:
            if inv is None:
                continue
            key = history[inv].get("key")
            if key is None:
                continue
        if f == "replay_diff":
            diff_replays += 1
            if type_ == "ok" or (status is not None and 200 <= status < 300):
                diff_accepted.append((pos, key, status, op.get("body")))
        elif type_ == "ok":
            body = op.get("body")
            ok_key_append(key)
            ok_answer_append((pos, status, body))
            if f == "replay":
                replay_oks.append((pos, key, status, body))
        elif type_ == "info":
            if key not in info_first:
                info_first[key] = pos
        elif key not in fail_first:
            fail_first[key] = pos
    # backwards, so that the first answer of a key is the one that stays
    ix.ok_first = dict(zip(reversed(ok_keys), reversed(ok_answers), strict=True))
    # an operation invoked and never completed is indeterminate: Jepsen's info
    invoked_add = ix.invoked_keys.add
    for pos in pending.values():
        ix.unfinished += 1
        op = history[pos]
        key = op.get("key")
        if key is not None:
            invoked_add(key)
        if key is not None and op.get("f") in ("transfer", "replay") and key not in info_first:
            info_first[key] = pos
    # a nemesis line typed ``invoke`` sits in ``pending`` (and so, never in ``nemesis``)
    ix.nemesis_complete = "nemesis" not in pending
    ix.diff_replays = diff_replays
    times = [op.get("time") for op in (history[0], history[-1])] if history else [None, None]
    ix.first_ns, ix.last_ns = times[0], times[1]
    ix.operations = len(ix.outcome) + ix.unfinished
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
        ix = history_index(history, ctx)
        # the index holds every nemesis line already: no second pass over the history
        lines = [op for _, op in ix.nemesis] if ix.nemesis_complete else history
        cached = (history, fault_windows_from_history(lines))
        ctx.cache["fault_windows"] = cached
    windows: list[FaultWindow] = cached[1]
    return windows


def ops_by_start(
    history: Sequence[Mapping[str, Any]], ctx: CheckContext
) -> tuple[list[float], list[float], list[int]]:
    """``(start_ns, latency_ms, outcome)`` of completed operations sorted by start.

    Histories are written in completion order; sorting by invoke time lets phases and
    per-second buckets be cut with bisection instead of a Python loop per operation.
    """
    cached = ctx.cache.get("ops_by_start")
    if cached is not None and cached[0] is history:
        return cached[1]  # type: ignore[no-any-return]
    ix = history_index(history, ctx)
    starts, lats, outs = ix.start_ns, ix.latency_ms, ix.outcome
    if not all(map(le, starts, islice(starts, 1, None))):
        order = sorted(range(len(starts)), key=starts.__getitem__)
        starts = [starts[i] for i in order]
        lats = [lats[i] for i in order]
        outs = [outs[i] for i in order]
    value = (starts, lats, outs)
    ctx.cache["ops_by_start"] = (history, value)
    return value
