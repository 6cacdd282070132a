"""What the clients were told versus what the ledger holds, key by key.

Idempotency keys are matched without the merchant: the load generator makes them
globally unique (UUIDs), and a snapshot row keeps both.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from typing import Any

from ._history import history_index
from ._registry import checker
from ._result import CheckContext, CheckResult, ErrorCollector

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
    before = _baseline_ids(ctx)
    rows_by_key: dict[Any, list[Any]] = {}
    seeded = 0
    for tr in state.get("transfers", ()):
        tid = tr["id"]
        if tid in before:
            continue
        key = tr.get("idempotency_key")
        if key is None:
            seeded += 1
            continue
        ids = rows_by_key.get(key)
        if ids is None:
            rows_by_key[key] = [tid]
        else:
            ids.append(tid)
    errors = ErrorCollector()
    n_ok = n_info = n_fail = 0
    for key, ops in ix.keyed.items():
        rows = rows_by_key.get(key, ())
        n_rows = len(rows)
        ok_lines = [line for line, type_, f, _s, _b in ops if type_ == "ok" and f != "replay_diff"]
        if ok_lines:
            n_ok += 1
            if n_rows == 1:
                continue
            kind = "lost_ok" if n_rows == 0 else "double_charge"
            errors.add(
                kind,
                {"key": key, "ok_lines": ok_lines[:5], "transfers": list(rows)},
                severity=n_rows,
                history=ok_lines[:3],
                rows={"transfers": rows},
            )
            continue
        info_lines = [line for line, type_, *_ in ops if type_ == "info"]
        if info_lines:
            n_info += 1
            if n_rows > 1:
                errors.add(
                    "info_applied_twice",
                    {"key": key, "info_lines": info_lines[:5], "transfers": list(rows)},
                    severity=n_rows,
                    history=info_lines[:3],
                    rows={"transfers": rows},
                )
            continue
        n_fail += 1
        if n_rows:
            fail_lines = [line for line, *_ in ops]
            errors.add(
                "failed_but_applied",
                {"key": key, "fail_lines": fail_lines[:5], "transfers": list(rows)},
                severity=n_rows,
                history=fail_lines[:3],
                rows={"transfers": rows},
            )
    invoked = ix.invoked_keys
    for key, rows in rows_by_key.items():
        if key not in invoked and key not in ix.keyed:
            errors.add(
                "transfer_without_invoke",
                {"key": key, "transfers": list(rows)},
                rows={"transfers": rows},
            )
    counts = {
        "keys": len(ix.keyed),
        "ok_keys": n_ok,
        "info_keys": n_info,
        "fail_keys": n_fail,
        "ledger_transfers": sum(len(r) for r in rows_by_key.values()),
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
    import json

    ix = history_index(history, ctx)
    stored: dict[Any, tuple[Any, Any]] = {}
    for row in state.get("idempotency", ()):
        if row.get("state", "done") != "done":
            continue
        body = row.get("response_body")
        if isinstance(body, str):
            with contextlib.suppress(ValueError):
                body = json.loads(body)
        stored[row["key"]] = (row.get("status_code"), body)
    errors = ErrorCollector()
    replays = diff_replays = 0
    for key, ops in ix.keyed.items():
        first_ok: tuple[int, Any, Any] | None = None
        for line, type_, f, status, body in ops:
            if f == "replay_diff":
                diff_replays += 1
                if type_ == "ok" or (status is not None and 200 <= status < 300):
                    errors.add(
                        "different_body_accepted",
                        {"key": key, "line": line, "status": status, "body": body},
                        history=[line] if first_ok is None else [first_ok[0], line],
                    )
                continue
            if type_ != "ok":
                continue
            if f == "replay":
                replays += 1
            if first_ok is None:
                first_ok = (line, status, body)
            elif (status, body) != (first_ok[1], first_ok[2]):
                errors.add(
                    "replay_mismatch",
                    {
                        "key": key,
                        "first": {"line": first_ok[0], "status": first_ok[1], "body": first_ok[2]},
                        "replay": {"line": line, "status": status, "body": body},
                    },
                    history=[first_ok[0], line],
                )
            saved = stored.get(key)
            if saved is None:
                continue
            s_status, s_body = saved
            bad_status = s_status is not None and status is not None and s_status != status
            bad_body = body is not None and s_body is not None and not _subset_equal(body, s_body)
            if bad_status or bad_body:
                errors.add(
                    "stored_response_mismatch",
                    {"key": key, "line": line, "status": status, "stored_status": s_status},
                    history=[line],
                    rows={"idempotency": [key]},
                )
    counts = {"replays_ok": replays, "different_body_replays": diff_replays}
    return errors.result("idempotent_replay", counts)
