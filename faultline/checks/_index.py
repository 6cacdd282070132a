"""The one pass over a history: its lines shrunk to the columns the checkers read.

The pass reads the history chunk by chunk (from a list of dicts or from the file) and
keeps columns only: per completed operation its start, latency and outcome; per keyed
answer its key code, line, status and a hash of its body. Invokes are paired with their
completions per process by a stable sort, so no Python code runs per line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt
import orjson

from faultline.history import KEYED_OPERATIONS

from ._columns import (
    MISSING,
    NONE_CODE,
    Codes,
    first_index,
    float_column,
    isin,
    small_codes,
    union,
    uniq,
)
from ._source import Chunk, RecordSource
from ._windows import plain

__all__ = [
    "ERROR",
    "EXPECTED_FAIL",
    "F64",
    "FIELDS",
    "KEYED_FUNCTIONS",
    "OK",
    "HistoryIndex",
    "IndexBuilder",
    "body_hash",
    "body_hashes",
    "body_value",
    "kept_body",
]

#: operations that carry an idempotency key and may move money
KEYED_FUNCTIONS = KEYED_OPERATIONS

# outcome codes in HistoryIndex.outcome
OK, EXPECTED_FAIL, ERROR = 0, 1, 2

INVOKE, T_OK, T_FAIL, T_INFO, T_OTHER = 0, 1, 2, 3, 4
_TYPES = {"invoke": INVOKE, "ok": T_OK, "fail": T_FAIL, "info": T_INFO}
F_TRANSFER, F_REPLAY, F_DIFF, F_OTHER = 0, 1, 2, 3
_FUNCS = {"transfer": F_TRANSFER, "replay": F_REPLAY, "replay_diff": F_DIFF}
#: fields read ("?": an absent field reads as None, as ``op.get`` did)
FIELDS = ("type?", "process?", "f?", "time?", "key?", "status?", "latency_ms?", "service_ms", "body",
           "value")
_NEMESIS = hash("nemesis")
_NULL_BODY = hash(b"null")

F64 = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]


def body_hash(body: Any) -> int:
    """A hash under which equal answers are equal (unequal hashes are compared exactly)."""
    if body is None or body is MISSING:
        return _NULL_BODY
    if isinstance(body, msgspec.Raw | bytes):  # raw JSON text (kept bodies are bytes)
        text = bytes(body)
        return _NULL_BODY if text == b"null" else hash(text)
    try:
        return hash(orjson.dumps(body))
    except (TypeError, orjson.JSONEncodeError):
        return hash((id(body), "not JSON"))  # never equal to another: compared exactly


def body_hashes(bodies: list[Any], *, raw: bool) -> Codes:
    """:func:`body_hash` of each; ``raw`` texts (a file's bodies) at C speed."""
    if raw:
        try:  # hash(b"null") is the hash of an absent body too
            return np.fromiter(map(hash, map(bytes, bodies)), np.int64, count=len(bodies))
        except TypeError:  # an absent body (no ``body`` field at all)
            pass
    return np.fromiter(map(body_hash, bodies), np.int64, count=len(bodies))


def kept_body(body: Any) -> Any:
    """What an index keeps of a body: a file's raw text copied out of its block
    (a ``Raw`` would pin the whole block), an in-memory value as it is."""
    if isinstance(body, msgspec.Raw):
        return bytes(body)
    return None if body is MISSING else body


def body_value(kept: Any) -> Any:
    """The value of a body kept by :func:`kept_body`."""
    return orjson.loads(kept) if isinstance(kept, bytes) else kept


@dataclass(slots=True)
class HistoryIndex:
    """Derived views of a history, built in one pass (docstring of the module).

    Keyed operations (``transfer``, ``replay``, ``replay_diff``) by key code, each
    sorted by code: ``ok_keys``/``ok_line``/``ok_status``/``ok_body`` (the first ``ok``
    of a transfer or same-body replay), ``info_keys``/``info_line`` and
    ``fail_keys``/``fail_line`` (first line; an invoke that never completed counts as
    ``info``). ``replay_*`` are the same-body replays answered ``ok`` in history order
    (``replay_bodies`` their bodies as recorded), ``diff_*`` the different-body replays
    answered 2xx, ``invoked_keys`` the keys of invokes that never completed.

    Per completed operation, in history order: ``start_ns`` (invoke time; for an
    operation that waited past its constant-arrival-rate slot, the slot),
    ``latency_ms``, ``outcome`` (``OK``/``EXPECTED_FAIL``/``ERROR``). ``nemesis``:
    ``(line, op)`` of every nemesis line. ``key_line_of`` maps the (rare) completion
    lines without a ``key`` to the invoke line the key is read from.
    """

    def key_line(self, line: int) -> int:
        """The line whose ``key`` is the key of the keyed operation at ``line``."""
        return self.key_line_of.get(line, line)

    source: RecordSource
    ok_keys: Codes
    ok_line: Ints
    ok_status: F64
    ok_body: Ints
    info_keys: Codes
    info_line: Ints
    fail_keys: Codes
    fail_line: Ints
    replay_line: Ints
    replay_key: Codes
    replay_status: F64
    replay_body: Ints
    replay_bodies: list[Any]
    diff_line: Ints
    diff_key: Codes
    diff_replays: int
    invoked_keys: Codes
    key_line_of: dict[int, int]
    start_ns: F64
    latency_ms: F64
    outcome: npt.NDArray[np.int8]
    nemesis: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    first_ns: Any = None
    last_ns: Any = None
    operations: int = 0
    unfinished: int = 0
    nemesis_complete: bool = True

    @property
    def keys(self) -> Codes:
        """Every key code with a keyed operation (sorted)."""
        return union(union(self.ok_keys, self.info_keys), self.fail_keys)


class _Pending:
    """Invokes not completed yet, one per process, carried from chunk to chunk."""

    def __init__(self) -> None:
        self.proc = np.zeros(0, np.int64)
        self.line = np.zeros(0, np.int64)
        self.key = np.zeros(0, np.int64)
        self.time = np.zeros(0, np.float64)
        self.f = np.zeros(0, np.int8)
        self.ins = np.zeros(0, np.int64)  # when the process entered the pending dict


def _keep(parts: list[Any], arr: Any) -> None:
    if len(arr):
        parts.append(arr)


def _cat(parts: list[Any], dtype: Any) -> Any:
    return np.concatenate(parts) if parts else np.zeros(0, dtype)


class IndexBuilder:
    def __init__(self, source: RecordSource) -> None:
        self.source = source
        self.pending = _Pending()
        self.nemesis_invoke: tuple[int, int, int] | None = None  # (first line, last line, key)
        self.nemesis: list[tuple[int, dict[str, Any]]] = []
        self.parts: dict[str, list[Any]] = {}
        self.replay_bodies: list[Any] = []
        self.diff_replays = 0
        self.base = 0
        self.first_ns: Any = None
        self.last_ns: Any = None

    def add(self, name: str, arr: Any) -> None:
        _keep(self.parts.setdefault(name, []), arr)

    def chunk(self, c: Chunk) -> None:
        n = c.n
        if not n:
            return
        if self.base == 0:
            self.first_ns = plain(c.at("time", 0))
        self.last_ns = plain(c.at("time", n - 1))
        lines = np.arange(self.base, self.base + n, dtype=np.int64)
        typ = small_codes(c.iter("type"), _TYPES, other=T_OTHER, count=n)
        proc = c.codes("process")
        nem = proc == _NEMESIS
        if nem.any():
            self._nemesis(c, np.flatnonzero(nem), typ)
        rows = np.flatnonzero(~nem)
        key = c.codes("key")
        f = small_codes(c.iter("f"), _FUNCS, other=F_OTHER, count=n)
        time = float_column(c["time"])
        lat_all = float_column(c["latency_ms"])
        status_all = float_column(c["status"])
        p = self.pending
        k = len(p.proc)
        # the carried invokes first: a stable sort keeps them before the chunk's lines
        cproc = np.concatenate([p.proc, proc[rows]])
        ctyp = np.concatenate([np.zeros(k, np.int8), typ[rows]])
        cline = np.concatenate([p.line, lines[rows]])
        ckey = np.concatenate([p.key, key[rows]])
        ctime = np.concatenate([p.time, time[rows]])
        cf = np.concatenate([p.f, f[rows]])
        cins = np.concatenate([p.ins, lines[rows]])
        inv, pend, pend_ins = _pair(cproc, ctyp)
        nxt = _Pending()
        nxt.proc, nxt.line, nxt.key = cproc[pend], cline[pend], ckey[pend]
        nxt.time, nxt.f, nxt.ins = ctime[pend], cf[pend], cins[pend_ins]
        self.pending = nxt
        comp = np.flatnonzero(ctyp != INVOKE)  # only chunk rows: carried rows are invokes
        if len(comp):
            self._completions(c, rows[comp - k], comp, inv[comp], ctyp, cline, ckey, ctime, cf,
                              lat_all, status_all)
        self.base += n

    def _nemesis(self, c: Chunk, idx: npt.NDArray[np.intp], typ: Any) -> None:
        for i in idx.tolist():
            op = {name: plain(c.at(name, i)) for name in ("type", "f", "time", "key", "value")}
            op["process"] = "nemesis"
            self.nemesis.append((self.base + i, op))
            if typ[i] == INVOKE:
                key = hash(op["key"])
                first = self.nemesis_invoke[0] if self.nemesis_invoke else self.base + i
                self.nemesis_invoke = (first, self.base + i, key)

    def _completions(self, c: Chunk, rows: Any, comp: Any, inv: Any,
                     ctyp: Any, cline: Any, ckey: Any, ctime: Any, cf: Any, lat_all: F64,
                     status_all: F64) -> None:
        has_inv = inv >= 0
        safe = np.where(has_inv, inv, 0)
        t_inv = np.where(has_inv, ctime[safe], np.nan)
        known_inv = ~np.isnan(t_inv)
        t = ctime[comp]
        t = np.where(np.isnan(t), np.where(known_inv, t_inv, 0.0), t)
        lat = lat_all[rows]
        lat = np.where(np.isnan(lat), np.where(known_inv, (t - t_inv) / 1e6, 0.0), lat)
        svc_col = c["service_ms"]
        if svc_col.count(MISSING) == len(svc_col):
            svc = np.zeros(len(rows), bool)
        else:
            svc = np.array([svc_col[i] is not MISSING for i in rows.tolist()], dtype=bool)
        start = np.where(known_inv & ~svc, t_inv, t - lat * 1e6)
        status = status_all[rows]
        typ = ctyp[comp]
        error = (typ == T_INFO) | np.isnan(status) | (status >= 500) | (status == 429)
        outcome = np.where(typ == T_OK, OK, np.where(error, ERROR, EXPECTED_FAIL)).astype(np.int8)
        self.add("start", start)
        self.add("lat", lat)
        self.add("out", outcome)
        f = cf[comp]
        keyed = f != F_OTHER
        if not keyed.any():
            return
        own = ckey[comp]
        borrowed = (own == NONE_CODE) & has_inv
        key = np.where(borrowed, ckey[safe], own)
        kline = np.where(borrowed, cline[safe], cline[comp])  # the line the key is read from
        keep = np.flatnonzero(keyed & (key != NONE_CODE))
        line, key, kline = cline[comp][keep], key[keep], kline[keep]
        f, typ, status, rows = f[keep], typ[keep], status[keep], rows[keep]
        diff = f == F_DIFF
        self.diff_replays += int(diff.sum())
        accepted = diff & ((typ == T_OK) | ((status >= 200) & (status < 300)))
        self.add("diff_line", line[accepted])
        self.add("diff_key", key[accepted])
        same = ~diff
        ok = np.flatnonzero(same & (typ == T_OK))
        ok_bodies = c.pick("body", rows[ok].tolist())
        hashes = body_hashes(ok_bodies, raw=c.raw)
        self.add("ok_key", key[ok])
        self.add("ok_line", line[ok])
        self.add("ok_status", status[ok])
        self.add("ok_body", hashes)
        replay = f[ok] == F_REPLAY
        self.add("r_line", line[ok][replay])
        self.add("r_key", key[ok][replay])
        self.add("r_status", status[ok][replay])
        self.add("r_body", hashes[replay])
        self.replay_bodies.extend(kept_body(b) for b, r in zip(ok_bodies, replay.tolist(), strict=True) if r)
        info = same & (typ == T_INFO)
        self.add("info_key", key[info])
        self.add("info_line", line[info])
        fail = same & (typ != T_OK) & (typ != T_INFO)
        self.add("fail_key", key[fail])
        self.add("fail_line", line[fail])
        moved = kline != line
        self.add("k_line", line[moved])
        self.add("k_kline", kline[moved])

    def finish(self) -> HistoryIndex:
        P = self.parts

        def cat(name: str, dtype: Any) -> Any:
            return _cat(P.get(name, []), dtype)

        ok_keys, first = first_index(cat("ok_key", np.int64))
        info_keys, info_first = first_index(cat("info_key", np.int64))
        info_line = cat("info_line", np.int64)[info_first]
        fail_keys, fail_first = first_index(cat("fail_key", np.int64))
        # invokes never completed are Jepsen's info, in the order of the former pending dict
        p = self.pending
        order = np.argsort(p.ins, kind="stable")
        un_key, un_line, un_f = p.key[order], p.line[order], p.f[order]
        unfinished = len(un_key)
        invoked = [un_key]
        if self.nemesis_invoke is not None:
            unfinished += 1
            invoked.append(np.array([self.nemesis_invoke[2]], np.int64))
        cand = (un_key != NONE_CODE) & ((un_f == F_TRANSFER) | (un_f == F_REPLAY))
        ck, cl = un_key[cand], un_line[cand]
        ck_first_keys, ck_first = first_index(ck)
        new = ~isin(ck_first_keys, info_keys)
        if new.any():
            keys = np.concatenate([info_keys, ck_first_keys[new]])
            lines = np.concatenate([info_line, cl[ck_first[new]]])
            srt = np.argsort(keys, kind="stable")
            info_keys, info_line = keys[srt], lines[srt]
        invoked_keys = uniq(np.concatenate(invoked))
        invoked_keys = invoked_keys[invoked_keys != NONE_CODE]
        outcome = cat("out", np.int8)
        return HistoryIndex(
            source=self.source,
            ok_keys=ok_keys,
            ok_line=cat("ok_line", np.int64)[first],
            ok_status=cat("ok_status", np.float64)[first],
            ok_body=cat("ok_body", np.int64)[first],
            info_keys=info_keys,
            info_line=info_line,
            fail_keys=fail_keys,
            fail_line=cat("fail_line", np.int64)[fail_first],
            replay_line=cat("r_line", np.int64),
            replay_key=cat("r_key", np.int64),
            replay_status=cat("r_status", np.float64),
            replay_body=cat("r_body", np.int64),
            replay_bodies=self.replay_bodies,
            diff_line=cat("diff_line", np.int64),
            diff_key=cat("diff_key", np.int64),
            diff_replays=self.diff_replays,
            invoked_keys=invoked_keys,
            key_line_of=_moved(cat("k_line", np.int64), cat("k_kline", np.int64)),
            start_ns=cat("start", np.float64),
            latency_ms=cat("lat", np.float64),
            outcome=outcome,
            nemesis=self.nemesis,
            first_ns=self.first_ns,
            last_ns=self.last_ns,
            operations=len(outcome) + unfinished,
            unfinished=unfinished,
            nemesis_complete=self.nemesis_invoke is None,
        )


def _moved(lines: Any, klines: Any) -> dict[int, int]:
    """Lines whose key is read from their invoke's line (completions without ``key``)."""
    return dict(zip(lines.tolist(), klines.tolist(), strict=True))


def _pair(proc: Codes, typ: Any) -> tuple[Any, Any, Any]:
    """(the invoke each line completes or -1, lines left pending, where each entered).

    A completion pairs with the previous line of its process when that is an invoke
    (the former ``pending`` dict, popped by a completion, overwritten by an invoke).
    """
    n = len(proc)
    inv = np.full(n, -1, np.int64)
    if not n:
        empty = np.zeros(0, np.int64)
        return inv, empty, empty
    order = np.argsort(proc, kind="stable")
    sp, st = proc[order], typ[order]
    same = np.zeros(n, bool)
    same[1:] = sp[1:] == sp[:-1]
    prev_invoke = np.zeros(n, bool)
    prev_invoke[1:] = st[:-1] == INVOKE
    paired = np.flatnonzero(same & prev_invoke & (st != INVOKE))
    inv[order[paired]] = order[paired - 1]
    last = np.ones(n, bool)
    last[:-1] = sp[1:] != sp[:-1]
    pend = np.flatnonzero(last & (st == INVOKE))
    run_start = np.where(~(same & prev_invoke), np.arange(n), 0)
    np.maximum.accumulate(run_start, out=run_start)
    return inv, order[pend], order[run_start[pend]]


