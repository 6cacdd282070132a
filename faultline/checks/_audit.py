"""The audit log: every transfer has its records, and the hash chain is intact."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from operator import itemgetter
from typing import Any

from ._registry import checker
from ._result import CheckContext, CheckResult, ErrorCollector

__all__ = ["GENESIS_HASH", "audit_complete", "local_chain_hash", "resolve_chain_hash"]

#: ``prev_hash`` of the first audit row (payments/migrations/0002_audit.sql)
GENESIS_HASH = "0" * 64


def _payload_text(payload: Any) -> str:
    if isinstance(payload, str):
        return payload
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def local_chain_hash(prev_hash: str, row: Mapping[str, Any]) -> str:
    """The formula of ``payments.audit.chain_hash`` (and SQL ``audit_hash``):
    ``sha256(prev|seq|entity|entity_id|action|payload)`` in hex, payload canonical JSON.

    Used only while ``payments.audit`` is not importable.
    """
    text = "|".join(
        (
            prev_hash,
            str(row["seq"]),
            str(row["entity"]),
            str(row["entity_id"]),
            str(row["action"]),
            _payload_text(row["payload"]),
        )
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def resolve_chain_hash() -> Callable[[str, Mapping[str, Any]], str]:
    """``payments.audit.chain_hash`` when the payments package provides it, else ours."""
    try:
        from payments.audit import chain_hash
    except ImportError:
        return local_chain_hash
    return chain_hash  # type: ignore[no-any-return,unused-ignore]


@checker("audit_complete")
def audit_complete(
    history: Sequence[Mapping[str, Any]], state: Mapping[str, Any], ctx: CheckContext
) -> CheckResult:
    """Every transfer has an audit record; seq has no gaps; each row's ``prev_hash`` is
    the previous row's ``hash`` and its ``hash`` recomputes (tampering shows here)."""
    chain_hash = resolve_chain_hash()
    errors = ErrorCollector()
    rows = sorted(state.get("audit", ()), key=itemgetter("seq"))
    prev_hash = GENESIS_HASH
    prev_seq: int | None = None
    audited = {
        entity_id
        for entity, entity_id in map(itemgetter("entity", "entity_id"), rows)
        if entity == "transfer"
    }
    for row in rows:
        seq = row["seq"]
        row_prev = row["prev_hash"]
        if prev_seq is not None and seq != prev_seq + 1:
            errors.add(
                "audit_gap",
                {"after_seq": prev_seq, "seq": seq},
                severity=seq - prev_seq,
                rows={"audit": [prev_seq, seq]},
            )
        if row_prev != prev_hash and (prev_seq is not None or seq == 1):
            errors.add(
                "broken_chain",
                {"seq": seq, "prev_hash": row_prev, "expected": prev_hash},
                rows={"audit": [s for s in (prev_seq, seq) if s is not None]},
            )
        prev_hash = row["hash"]
        if chain_hash(row_prev, row) != prev_hash:
            errors.add(
                "tampered_audit_row",
                {"seq": seq, "entity": row.get("entity"), "entity_id": row.get("entity_id")},
                rows={"audit": [seq]},
            )
        prev_seq = seq
    before: set[Any] = (
        {t["id"] for t in ctx.baseline.get("transfers", ())} if ctx.baseline else set()
    )
    transfers = state.get("transfers", ())
    missing = set(map(itemgetter("id"), transfers)) - audited - before
    if missing:
        for tid in map(itemgetter("id"), transfers):
            if tid in missing:
                errors.add("missing_audit", {"transfer": tid}, rows={"transfers": [tid]})
    counts = {"audit_rows": len(rows), "transfers": len(transfers), "audited": len(audited)}
    return errors.result("audit_complete", counts)
