"""What the clients were told versus what the ledger holds, key by key.

Idempotency keys are matched without the merchant: the load generator makes them
globally unique (UUIDs), and a snapshot row keeps both.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from typing import Any

import numpy as np

from ._columns import (
    NONE_CODE,
    Codes,
    first_appearance,
    in_sorted,
    intersect,
    isin,
    lookup,
    setdiff,
    union,
    uniq,
)
from ._history import HistoryIndex, body_value, history_index
from ._registry import checker
from ._result import UNKNOWN, CheckContext, CheckResult, ErrorCollector, Example
from ._snapshot import table

__all__ = ["acknowledged_exactly_once", "idempotent_replay"]


def baseline_ids(ctx: CheckContext) -> Codes:
    """Codes of the transfers of the baseline snapshot (sorted; none without one)."""
    if not ctx.baseline:
        return np.zeros(0, np.int64)
    cached = ctx.cache.get("baseline_ids")
    if cached is not None and cached[0] is ctx.baseline:
        return cached[1]  # type: ignore[no-any-return]
    ids = uniq(table(ctx.baseline, ctx, "transfers").col("id"))
    ctx.cache["baseline_ids"] = (ctx.baseline, ids)
    return ids


def _sorted_by(keys: Codes, lines: Any, members: Codes) -> Codes:
    """The ``members`` of sorted ``keys`` in the order of their ``lines``."""
    pos = np.searchsorted(keys, members)
    return members[np.argsort(lines[pos], kind="stable")]


_KINDS = ("lost_ok", "double_charge", "info_applied_twice", "failed_but_applied",
          "transfer_without_invoke")
_SHAPES = {
    "lost_ok": (True, ()),
    "double_charge": (True, ("transfers",)),
    "info_applied_twice": (True, ("transfers",)),
    "failed_but_applied": (True, ("transfers",)),
    "transfer_without_invoke": (False, ("transfers",)),
}


@checker("acknowledged_exactly_once")
def acknowledged_exactly_once(history: Any, state: Any, ctx: CheckContext) -> CheckResult:
    """``ok`` ⇒ exactly one transfer row for the key; only ``fail`` ⇒ none; ``info`` ⇒ ≤ 1.

    And no transfer in the ledger whose key no client ever invoked (transfers of the
    baseline snapshot and seed transfers without a key are the stack's own).
    """
    ix = history_index(history, ctx)
    if ix.operations == 0:
        return CheckResult(
            name="acknowledged_exactly_once",
            valid=UNKNOWN,
            message="the history has no client operations: nothing was checked",
        )
    transfers = table(state, ctx, "transfers")
    before = baseline_ids(ctx)
    keys = transfers.col("idempotency_key")
    rows_mask = ~isin(transfers.col("id"), before) if len(before) else np.ones(len(keys), bool)
    # a declined or rejected row under a key records a refusal: it moved no money, so a
    # client told "no" for that key saw the truth (failed_but_applied needs a commit)
    committed = keys[rows_mask & ~transfers.col("uncommitted")]
    committed = committed[committed != NONE_CODE]
    keys = keys[rows_mask]
    seeded = int(np.count_nonzero(keys == NONE_CODE))
    keyed = keys[keys != NONE_CODE]
    in_ledger, counts = np.unique(keyed, return_counts=True)
    duplicated = in_ledger[counts > 1]
    ok, info, fail = ix.ok_keys, ix.info_keys, ix.fail_keys
    never_ok = setdiff(in_ledger, ok)
    groups = [
        _sorted_by(ok, ix.ok_line, setdiff(ok, in_ledger)),
        _sorted_by(ok, ix.ok_line, intersect(ok, duplicated)),
        _sorted_by(info, ix.info_line, setdiff(intersect(info, duplicated), ok)),
        _sorted_by(fail, ix.fail_line,
                   setdiff(intersect(fail, np.unique(committed)), union(ok, info))),
    ]
    unexplained = setdiff(setdiff(never_ok, info), fail)
    strangers = setdiff(unexplained, ix.invoked_keys)
    groups.append(first_appearance(keyed[isin(keyed, strangers)]))
    errors = ErrorCollector()
    kinds_of = np.concatenate([np.full(len(g), k) for k, g in enumerate(groups)])
    if len(kinds_of):
        bad = np.concatenate(groups)
        sizes = dict(zip(in_ledger.tolist(), counts.tolist(), strict=True))
        severity = [sizes.get(k, 0) for k in bad.tolist()]
        errors.add_batch(_KINDS, kinds_of, _examples(ix, bad, kinds_of, transfers, rows_mask),
                         shapes=_SHAPES, severity=severity)
    info_only = setdiff(info, ok)
    fail_only = setdiff(setdiff(fail, ok), info)
    result_counts = {
        "keys": len(ok) + len(info_only) + len(fail_only),
        "ok_keys": len(ok),
        "info_keys": len(info_only),
        "ledger_transfers": len(keys) - seeded,
        "transfers_without_key": seeded,
        "unfinished_operations": ix.unfinished,
    }
    return errors.result("acknowledged_exactly_once", result_counts)


def _first_lines(ix: HistoryIndex, codes: Codes, kinds: Any) -> list[int | None]:
    """The first history line of each key, from the answers its kind is about."""
    out: list[int | None] = [None] * len(codes)
    for kind_set, keys, lines in (((0, 1), ix.ok_keys, ix.ok_line), ((2,), ix.info_keys, ix.info_line),
                                  ((3,), ix.fail_keys, ix.fail_line)):
        at = np.flatnonzero(np.isin(kinds, kind_set))
        if len(at) and len(keys):
            pos = np.clip(np.searchsorted(keys, codes[at]), 0, len(keys) - 1)
            for i, line in zip(at.tolist(), lines[pos].tolist(), strict=True):
                out[i] = line
    return out


def _examples(ix: HistoryIndex, bad: Codes, kinds_of: Any, transfers: Any, rows_mask: Any) -> Any:
    t_keys = transfers.col("idempotency_key")

    def materialize(positions: Any) -> list[Example]:
        codes = bad[positions]
        t_pos = np.flatnonzero(isin(t_keys, codes) & rows_mask)
        rows = transfers.rows_at(t_pos.tolist())
        ids_of: dict[int, list[Any]] = {}
        for p in t_pos.tolist():
            ids_of.setdefault(hash(rows[p]["idempotency_key"]), []).append(rows[p]["id"])
        key_text = {hash(r["idempotency_key"]): r["idempotency_key"] for r in rows.values()}
        lines = _first_lines(ix, codes, kinds_of[positions])
        ops = ix.source.rows_at([ix.key_line(line) for line in lines if line is not None])
        out: list[Example] = []
        for code, line in zip(codes.tolist(), lines, strict=True):
            history = [] if line is None else [line]
            key = key_text.get(code) if line is None else ops[ix.key_line(line)].get("key")
            ids = ids_of.get(code, [])
            out.append(({"key": key, "history_lines": history, "transfers": ids}, history,
                        {"transfers": ids} if ids else None))
        return out

    return materialize


def _subset_equal(recorded: Any, stored: Any) -> bool:
    """The client records only the response essentials: compare on its keys."""
    if isinstance(recorded, Mapping) and isinstance(stored, Mapping):
        return all(k in stored and stored[k] == v for k, v in recorded.items())
    return bool(recorded == stored)


def _stored_answers(state: Any, ctx: CheckContext, replayed: Codes) -> tuple[Any, ...]:
    """(key codes sorted, row positions, status codes, body hashes) of the idempotency
    rows of replayed keys: the last row of a key wins, and only a ``done`` one (absent
    state: done) counts."""
    t = table(state, ctx, "idempotency")
    keys = t.col("key")
    rows = np.flatnonzero(in_sorted(keys, replayed))[::-1]  # the last row of a key first
    codes, first = np.unique(keys[rows], return_index=True)
    last = rows[first]
    done = t.col("state")[last]
    last = last[done]
    return t, codes[done], last, t.col("status_code")[last], t.col("response_body")[last]


def _stored_value(kept: Any) -> Any:
    """A stored response body as the client would read it (JSON text parsed)."""
    body = body_value(kept)
    if isinstance(body, str):
        with contextlib.suppress(ValueError):
            body = json.loads(body)
    return body


def _same_status(a: float, b: float) -> bool:
    return a == b or (a != a and b != b)


def _same_statuses(a: Any, b: Any) -> Any:
    """Element-wise status equality, ``None`` (NaN) equal to ``None``."""
    return (a == b) | (np.isnan(a) & np.isnan(b))


@checker("idempotent_replay")
def idempotent_replay(history: Any, state: Any, ctx: CheckContext) -> CheckResult:
    """A replay with the same body gets the first answer; a different body gets 422.

    Same body: every ``ok`` replay's status and body equal the key's first ``ok``
    answer and the stored idempotency response. Different body: a 2xx for a key whose
    first body was answered ``ok`` is a violation (409 while the first is in flight and
    422 are the right answers); when the first never got an ``ok``, it may never have
    reached the stack, and the ledger checks judge what the second did.
    """
    ix = history_index(history, ctx)
    src = ix.source
    errors = ErrorCollector()
    # a different body accepted for a key whose first body was accepted too; without
    # that, the first may never have reached the stack (then the second is the first)
    stored_first = in_sorted(ix.diff_key, ix.ok_keys)
    diff_line, diff_key = ix.diff_line[stored_first], ix.diff_key[stored_first]
    if len(diff_line):
        firsts = lookup(ix.ok_keys, ix.ok_line.tolist(), diff_key, None)

        def diff_examples(positions: Any) -> list[Example]:
            lines = diff_line[positions].tolist()
            ops = src.rows_at(lines + [ix.key_line(x) for x in lines])
            out: list[Example] = []
            for p, line in zip(positions.tolist(), lines, strict=True):
                op = ops[line]
                key = ops[ix.key_line(line)].get("key")
                first = firsts[p]
                out.append(({"key": key, "line": line, "status": op.get("status"),
                             "body": op.get("body")}, [line] if first is None else [first, line],
                            None))
            return out

        errors.add_batch(("different_body_accepted",), np.zeros(len(diff_line), np.int64),
                         diff_examples, shapes={"different_body_accepted": (True, ())})
    pos = np.searchsorted(ix.ok_keys, ix.replay_key)
    first_line = ix.ok_line[pos] if len(pos) else ix.ok_line[:0]
    first_status = ix.ok_status[pos] if len(pos) else ix.ok_status[:0]
    first_body = ix.ok_body[pos] if len(pos) else ix.ok_body[:0]
    r_status = ix.replay_status
    mismatch = (first_line != ix.replay_line) & (
        (first_body != ix.replay_body) | ~_same_statuses(first_status, r_status))
    suspects = np.flatnonzero(mismatch)
    found: list[tuple[int, int, Any]] = []  # (replay index, kind, stored status)
    if len(suspects):  # equal hashes are equal answers; the others are compared exactly
        ops = src.rows_at(first_line[suspects].tolist())
        for i in suspects.tolist():
            if not _same_status(float(r_status[i]), float(first_status[i])) or body_value(
                    ix.replay_bodies[i]) != ops[int(first_line[i])].get("body"):
                found.append((i, 0, None))
    if len(ix.replay_line):
        t, s_key, s_pos, s_status, s_hash = _stored_answers(state, ctx, uniq(ix.replay_key))
        j = np.minimum(np.searchsorted(s_key, ix.replay_key), max(len(s_key) - 1, 0))
        saved = s_key[j] == ix.replay_key if len(s_key) else np.zeros(len(r_status), bool)
        same = saved & _same_statuses(r_status, s_status[j]) & (s_hash[j] == ix.replay_body)
        slow = np.flatnonzero(saved & ~same)
        stored_rows = t.rows_at(s_pos[j[slow]].tolist()) if len(slow) else {}
        for i in slow.tolist():
            row = stored_rows[int(s_pos[j[i]])]
            status = None if r_status[i] != r_status[i] else float(r_status[i])
            s_status_i = row.get("status_code")
            body = body_value(ix.replay_bodies[i])
            s_body = _stored_value(row.get("response_body"))
            if status == s_status_i and body == s_body:
                continue
            bad_status = s_status_i is not None and status is not None and s_status_i != status
            bad_body = body is not None and s_body is not None and not _subset_equal(body, s_body)
            if bad_status or bad_body:
                found.append((i, 1, s_status_i))
        found.sort(key=lambda x: (x[0], x[1]))
    if found:
        errors.add_batch(("replay_mismatch", "stored_response_mismatch"),
                         [k for _, k, _ in found], _replay_examples(ix, found, first_line),
                         shapes={"replay_mismatch": (True, ()),
                                 "stored_response_mismatch": (True, ("idempotency",))})
    counts = {"replays_ok": len(ix.replay_line), "different_body_replays": ix.diff_replays}
    return errors.result("idempotent_replay", counts)


def _replay_examples(ix: HistoryIndex, found: list[tuple[int, int, Any]], first_line: Any) -> Any:
    def materialize(positions: Any) -> list[Example]:
        picked = [found[p] for p in positions.tolist()]
        lines: list[int] = []
        for i, _, _ in picked:
            line = int(ix.replay_line[i])
            lines += [line, ix.key_line(line), int(first_line[i])]
        ops = ix.source.rows_at(lines)
        out: list[Example] = []
        for i, kind, s_status in picked:
            line, first = int(ix.replay_line[i]), int(first_line[i])
            op, key = ops[line], ops[ix.key_line(line)].get("key")
            if kind == 0:
                f_op = ops[first]
                example = {"key": key,
                           "first": {"line": first, "status": f_op.get("status"), "body": f_op.get("body")},
                           "replay": {"line": line, "status": op.get("status"), "body": op.get("body")}}
                out.append((example, [first, line], None))
            else:
                example = {"key": key, "line": line, "status": op.get("status"),
                           "stored_status": s_status}
                out.append((example, [line], {"idempotency": [key]}))
        return out

    return materialize
