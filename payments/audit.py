"""The hash-chained, append-only audit log.

Each row carries the hash of the previous row; ``chain_hash`` is the function both the
database (``audit_hash`` in migrations/0002_audit.sql) and the checkers use, so a
tampered, removed or forked row shows up as a broken link.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

__all__ = ["GENESIS_HASH", "append", "canonical_payload", "chain_hash", "verify_chain"]

GENESIS_HASH = "0" * 64


def canonical_payload(payload: Any) -> str:
    """The one text form of a payload that is hashed and stored: sorted keys, compact."""
    if isinstance(payload, str):
        return payload
    return orjson.dumps(payload, option=orjson.OPT_SORT_KEYS).decode()


def chain_hash(prev_hash: str, row: Mapping[str, Any]) -> str:
    """sha256 hex of ``prev_hash|seq|entity|entity_id|action|payload``.

    ``row["payload"]`` is the stored canonical JSON text; a dict is canonicalized first.
    """
    text = "|".join(
        (
            prev_hash,
            str(int(row["seq"])),
            str(row["entity"]),
            str(row["entity_id"]),
            str(row["action"]),
            canonical_payload(row["payload"]),
        )
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def verify_chain(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Problems found walking the chain in ``seq`` order; an empty list means intact.

    Each problem is ``{"seq", "problem": "gap|prev_hash|hash", "detail"}``.
    """
    problems: list[dict[str, Any]] = []
    prev_hash, prev_seq = GENESIS_HASH, 0
    for row in sorted(rows, key=lambda r: int(r["seq"])):
        seq = int(row["seq"])
        if seq != prev_seq + 1:
            problems.append({"seq": seq, "problem": "gap", "detail": f"after seq {prev_seq}"})
        if row["prev_hash"] != prev_hash:
            problems.append({"seq": seq, "problem": "prev_hash",
                             "detail": "does not link to the previous row's hash"})
        expected = chain_hash(str(row["prev_hash"]), row)
        if row["hash"] != expected:
            problems.append({"seq": seq, "problem": "hash",
                             "detail": "row content does not match its hash (tampered)"})
        prev_hash, prev_seq = str(row["hash"]), seq
    return problems


async def append(conn: Any, entity: str, entity_id: str, action: str, payload: Any,
                 *, racy: bool = False) -> int:
    """Append one audit row inside the caller's transaction; return its seq.

    ``racy`` is the ``audit_chain_skip`` bug: the head is read without a lock, so
    concurrent appends link to the same predecessor and the chain forks.
    """
    text = canonical_payload(payload)
    if not racy:
        return int(await conn.fetchval("SELECT audit_append($1, $2, $3, $4)",
                                       entity, entity_id, action, text))
    # BUG(audit_chain_skip): stale read of the head, then a blind increment.
    stale = await conn.fetchval("SELECT hash FROM audit_head WHERE id = 1")
    seq = int(await conn.fetchval("UPDATE audit_head SET seq = seq + 1 WHERE id = 1 RETURNING seq"))
    row = {"seq": seq, "entity": entity, "entity_id": entity_id, "action": action, "payload": text}
    new_hash = chain_hash(stale, row)
    await conn.execute(
        "INSERT INTO audit_log (seq, entity, entity_id, action, payload, prev_hash, hash)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7)", seq, entity, entity_id, action, text, stale, new_hash)
    await conn.execute("UPDATE audit_head SET hash = $1 WHERE id = 1", new_hash)
    return seq
