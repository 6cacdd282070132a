"""What the clients were told versus what the ledger holds, key by key.

Idempotency keys are matched without the merchant: the load generator makes them
globally unique (UUIDs), and a snapshot row keeps both.
"""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from itertools import compress, filterfalse
from operator import itemgetter
from typing import Any

from ._history import history_index
from ._registry import checker
from ._result import UNKNOWN, CheckContext, CheckResult, ErrorCollector
from ._snapshot import transfer_column

__all__ = ["acknowledged_exactly_once", "idempotent_replay"]


def _baseline_ids(ctx: CheckContext) -> set[Any]:
    if not ctx.baseline:
        return set()
    return {t["id"] for t in ctx.baseline.get("transfers", ())}


@checker("acknowledged_exactly_once")
def acknowledged_exactly_once(
    history: Sequence[Mapping[str, Any]], state: Mapping[str, Any], ctx: CheckContext
) -> CheckResult:
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
    transfers = state.get("transfers", ())
    before = _baseline_ids(ctx)
    if before:
        transfers = [t for t in transfers if t["id"] not in before]
        keys = list(map(itemgetter("idempotency_key"), transfers))
    else:
        keys = list(transfer_column(state, ctx, "idempotency_key"))
    seeded = keys.count(None)
    in_ledger = set(keys)
    in_ledger.discard(None)
    duplicated = (
        {k for k, n in Counter(keys).items() if n > 1 and k is not None}
        if len(in_ledger) + seeded != len(keys)
        else set()
    )
    bad_keys: dict[Any, tuple[str, list[int]]] = {}
    ok_first, info_first, fail_first = ix.ok_first, ix.info_first, ix.fail_first
    # set algebra keeps this C-speed for a million keys; Python loops only over bad
    # keys (``a.difference(big_dict)`` walks ``a`` once, where ``a - big_dict.keys()``
    # copies ``a`` and then walks every key of the dict)
    never_ok = in_ledger.difference(ok_first)
    # |ok - ledger| = |ok| - |ledger| + |ledger - ok|: walk the ok keys only if one is lost
    if len(ok_first) - len(in_ledger) + len(never_ok):
        lost = filterfalse(in_ledger.__contains__, ok_first)
        for key in sorted(lost, key=lambda k: ok_first[k][0]):  # in history order
            bad_keys[key] = ("lost_ok", [ok_first[key][0]])
    for key in ok_first.keys() & duplicated:
        bad_keys[key] = ("double_charge", [ok_first[key][0]])
    for key in (info_first.keys() & duplicated).difference(ok_first):
        bad_keys[key] = ("info_applied_twice", [info_first[key]])
    for key in (fail_first.keys() & in_ledger).difference(ok_first, info_first):
        bad_keys[key] = ("failed_but_applied", [fail_first[key]])
    unexplained = never_ok.difference(info_first, fail_first)
    for key in unexplained - ix.invoked_keys:
        bad_keys[key] = ("transfer_without_invoke", [])
    errors = ErrorCollector()
    if bad_keys:
        rows_of: dict[Any, list[Any]] = {}
        for t in transfers:
            k = t.get("idempotency_key")
            if k in bad_keys:
                rows_of.setdefault(k, []).append(t["id"])
        for key, (kind, lines) in bad_keys.items():
            rows = rows_of.get(key, [])
            errors.add(
                kind,
                {"key": key, "history_lines": lines, "transfers": rows},
                severity=len(rows),
                history=lines,
                rows={"transfers": rows} if rows else None,
            )
    info_only = set(info_first).difference(ok_first)
    fail_only = set(fail_first).difference(ok_first, info_first)
    counts = {
        "keys": len(ok_first) + len(info_only) + len(fail_only),
        "ok_keys": len(ok_first),
        "info_keys": len(info_only),
        "ledger_transfers": len(transfers) - seeded,
        "transfers_without_key": seeded,
        "unfinished_operations": ix.unfinished,
    }
    return errors.result("acknowledged_exactly_once", counts)


def _subset_equal(recorded: Any, stored: Any) -> bool:
    """The client records only the response essentials: compare on its keys."""
    if isinstance(recorded, Mapping) and isinstance(stored, Mapping):
        return all(k in stored and stored[k] == v for k, v in recorded.items())
    return bool(recorded == stored)


@checker("idempotent_replay")
def idempotent_replay(
    history: Sequence[Mapping[str, Any]], state: Mapping[str, Any], ctx: CheckContext
) -> CheckResult:
    """A replay with the same body gets the first answer; a different body gets 422.

    Same body: every ``ok`` replay's status and body equal the key's first ``ok``
    answer and the stored idempotency response. Different body: a 2xx is a violation
    (409 while the first is in flight and 422 are the right answers).
    """
    ix = history_index(history, ctx)
    errors = ErrorCollector()
    ok_first = ix.ok_first
    for line, key, status, body in ix.diff_accepted:
        first = ok_first.get(key)
        errors.add(
            "different_body_accepted",
            {"key": key, "line": line, "status": status, "body": body},
            history=[line] if first is None else [first[0], line],
        )
    stored: dict[Any, tuple[Any, Any]] = {}
    if ix.replay_oks:
        rows = state.get("idempotency", ())
        replayed = set(map(itemgetter(1), ix.replay_oks))
        # only the replayed keys' rows (a dict of every row costs more than the check);
        # the last row of a key wins, as in a dict of them all
        rows = list(compress(rows, map(replayed.__contains__, map(itemgetter("key"), rows))))
        for key, row in dict(zip(map(itemgetter("key"), rows), rows, strict=True)).items():
            if row.get("state", "done") != "done":
                continue
            body = row.get("response_body")
            if isinstance(body, str):
                with contextlib.suppress(ValueError):
                    body = json.loads(body)
            stored[key] = (row.get("status_code"), body)
    for line, key, status, body in ix.replay_oks:
        first_line, first_status, first_body = ok_first[key]
        if first_line != line and (status != first_status or body != first_body):
            errors.add(
                "replay_mismatch",
                {
                    "key": key,
                    "first": {"line": first_line, "status": first_status, "body": first_body},
                    "replay": {"line": line, "status": status, "body": body},
                },
                history=[first_line, line],
            )
        saved = stored.get(key)
        if saved is None:
            continue
        s_status, s_body = saved
        if status == s_status and body == s_body:
            continue
        bad_status = s_status is not None and status is not None and s_status != status
        bad_body = body is not None and s_body is not None and not _subset_equal(body, s_body)
        if bad_status or bad_body:
            errors.add(
                "stored_response_mismatch",
                {"key": key, "line": line, "status": status, "stored_status": s_status},
                history=[line],
                rows={"idempotency": [key]},
            )
    counts = {"replays_ok": len(ix.replay_oks), "different_body_replays": ix.diff_replays}
    return errors.result("idempotent_replay", counts)
