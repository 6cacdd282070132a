"""The audit log: every transfer has its records, and the hash chain is intact."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from itertools import compress, repeat
from operator import add, itemgetter, ne
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
    errors = ErrorCollector()
    rows = sorted(state.get("audit", ()), key=itemgetter("seq"))
    n = len(rows)
    seqs = list(map(itemgetter("seq"), rows))
    prevs = list(map(itemgetter("prev_hash"), rows))
    hashes = list(map(itemgetter("hash"), rows))
    chain_hash = resolve_chain_hash()
    # one SHA-256 per row is the floor; the comparisons below run at C speed
    recomputed = list(map(chain_hash, prevs, rows))
    # Python-level work only at the rows where something is wrong
    gaps = compress(range(1, n), map(ne, seqs[1:], map(add, seqs[:-1], repeat(1))))
    for i in gaps:
        errors.add(
            "audit_gap",
            {"after_seq": seqs[i - 1], "seq": seqs[i]},
            severity=seqs[i] - seqs[i - 1],
            rows={"audit": [seqs[i - 1], seqs[i]]},
        )
    if n and seqs[0] == 1 and prevs[0] != GENESIS_HASH:
        errors.add(
            "broken_chain",
            {"seq": 1, "prev_hash": prevs[0], "expected": GENESIS_HASH},
            rows={"audit": [1]},
        )
    for i in compress(range(1, n), map(ne, prevs[1:], hashes[:-1])):
        errors.add(
            "broken_chain",
            {"seq": seqs[i], "prev_hash": prevs[i], "expected": hashes[i - 1]},
            rows={"audit": [seqs[i - 1], seqs[i]]},
        )
    for i in compress(range(n), map(ne, recomputed, hashes)):
        row = rows[i]
        errors.add(
            "tampered_audit_row",
            {"seq": seqs[i], "entity": row.get("entity"), "entity_id": row.get("entity_id")},
            rows={"audit": [seqs[i]]},
        )
    audited = {
        entity_id
        for entity, entity_id in map(itemgetter("entity", "entity_id"), rows)
        if entity == "transfer"
    }
    before: set[Any] = (
        {t["id"] for t in ctx.baseline.get("transfers", ())} if ctx.baseline else set()
    )
    transfers = state.get("transfers", ())
    missing = set(map(itemgetter("id"), transfers)) - audited - before
    if missing:
        for tid in map(itemgetter("id"), transfers):
            if tid in missing:
                errors.add("missing_audit", {"transfer": tid}, rows={"transfers": [tid]})
    counts = {"audit_rows": n, "transfers": len(transfers), "audited": len(audited)}
    return errors.result("audit_complete", counts)
