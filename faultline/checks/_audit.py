"""The audit log: every transfer has its records, and the hash chain is intact."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import compress, islice, repeat
from operator import add, itemgetter, le, ne
from typing import Any

from ._registry import checker
from ._result import CheckContext, CheckResult, ErrorCollector
from ._snapshot import transfer_ids

__all__ = [
    "GENESIS_HASH",
    "audit_complete",
    "chain_text",
    "local_chain_hash",
    "resolve_chain_hash",
]

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


def chain_text(
    prev_hash: str,
    seq: Any,
    entity: Any,
    entity_id: Any,
    action: Any,
    payload: Any,
    canonical_payload: Callable[[Any], str],
) -> bytes:
    """What ``payments.audit.chain_hash`` hashes, term for term, from a row's fields."""
    payload_text = payload if isinstance(payload, str) else canonical_payload(payload)
    seq_text = str(seq) if seq.__class__ is int else str(int(seq))  # int(an int) is itself
    return "|".join(
        (prev_hash, seq_text, str(entity), str(entity_id), str(action), payload_text)
    ).encode("utf-8")


def _payments_canonical_payload() -> Callable[[Any], str] | None:
    try:
        from payments.audit import canonical_payload
    except ImportError:
        return None
    return canonical_payload  # type: ignore[no-any-return,unused-ignore]


#: the fields of an audit row the checker reads (the first six in ``chain_text`` order)
_ROW = itemgetter("prev_hash", "seq", "entity", "entity_id", "action", "payload", "hash")


@dataclass(slots=True)
class _Chain:
    """The audit log read in one pass, in its order."""

    seqs: list[Any] = field(default_factory=list)
    prevs: list[Any] = field(default_factory=list)
    hashes: list[Any] = field(default_factory=list)
    #: positions of the rows whose ``hash`` does not recompute
    tampered: list[int] = field(default_factory=list)
    #: ``entity_id`` of the transfer rows, in log order
    audited: list[Any] = field(default_factory=list)


def _read_chain(rows: Sequence[Mapping[str, Any]]) -> _Chain:
    """Every row rehashed, and the columns the other checks need, in one pass.

    A pass per column and a Python call per row would cost more than the SHA-256
    itself: with ``payments.audit`` importable its formula runs inlined here
    (:func:`chain_text` spells it out; tests pin both to ``chain_hash``), once it
    agrees with ``chain_hash`` on the first row. Should the payments formula ever
    change, this falls back to calling ``chain_hash`` per row.
    """
    chain_hash = resolve_chain_hash()
    canonical = _payments_canonical_payload()
    if canonical is not None and rows:
        prev, seq, entity, entity_id, action, payload, _ = _ROW(rows[0])
        first = chain_text(prev, seq, entity, entity_id, action, payload, canonical)
        if hashlib.sha256(first).hexdigest() != chain_hash(prev, rows[0]):
            canonical = None
    out = _Chain()
    seq_append, prev_append, hash_append = out.seqs.append, out.prevs.append, out.hashes.append
    tampered_append, audited_append = out.tampered.append, out.audited.append
    sha256 = hashlib.sha256
    for i, (prev, seq, entity, entity_id, action, payload, stored) in enumerate(map(_ROW, rows)):
        seq_append(seq)
        prev_append(prev)
        hash_append(stored)
        if entity == "transfer":
            audited_append(entity_id)
        if canonical is not None:
            # chain_text, inlined
            text = "|".join(
                (
                    prev,
                    str(seq) if seq.__class__ is int else str(int(seq)),
                    str(entity),
                    str(entity_id),
                    str(action),
                    payload if isinstance(payload, str) else canonical(payload),
                )
            )
            if sha256(text.encode("utf-8")).hexdigest() != stored:
                tampered_append(i)
    if canonical is None:
        out.tampered = [
            i for i, row in enumerate(rows) if chain_hash(out.prevs[i], row) != out.hashes[i]
        ]
    return out


def _read_column_by_column(rows: Sequence[Mapping[str, Any]]) -> None:
    """The reads of a malformed log in their former order: sort by seq, each column,
    then ``chain_hash`` row by row, so that a checker that fails names the same row
    and field as it always has."""
    rows = sorted(rows, key=itemgetter("seq"))
    for name in ("seq", "prev_hash", "hash"):
        list(map(itemgetter(name), rows))
    chain_hash = resolve_chain_hash()
    for row in rows:
        chain_hash(row["prev_hash"], row)


@checker("audit_complete")
def audit_complete(
    history: Sequence[Mapping[str, Any]], state: Mapping[str, Any], ctx: CheckContext
) -> CheckResult:
    """Every transfer has an audit record; seq has no gaps; each row's ``prev_hash`` is
    the previous row's ``hash`` and its ``hash`` recomputes (tampering shows here)."""
    errors = ErrorCollector()
    rows = list(state.get("audit", ()))
    try:
        chain = _read_chain(rows)
        in_order = all(map(le, chain.seqs, islice(chain.seqs, 1, None)))
    except Exception:
        _read_column_by_column(rows)  # fails on the row and field it always failed on
        raise
    if not in_order:  # snapshots read the log ORDER BY seq; anything else is sorted
        rows.sort(key=itemgetter("seq"))
        chain = _read_chain(rows)
    seqs, prevs, hashes = chain.seqs, chain.prevs, chain.hashes
    n = len(rows)
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
    for i in chain.tampered:
        row = rows[i]
        errors.add(
            "tampered_audit_row",
            {"seq": seqs[i], "entity": row.get("entity"), "entity_id": row.get("entity_id")},
            rows={"audit": [seqs[i]]},
        )
    before: set[Any] = (
        {t["id"] for t in ctx.baseline.get("transfers", ())} if ctx.baseline else set()
    )
    transfers = state.get("transfers", ())
    ids = transfer_ids(state, ctx)
    # as many transfer rows as transfers, and every transfer among them: each transfer
    # audited once, which needs no second million-row set
    each_once = len(chain.audited) == len(ids) and not ids.difference(chain.audited)
    audited = ids if each_once else set(chain.audited)
    missing = ids - audited - before
    if missing:
        for tid in map(itemgetter("id"), transfers):
            if tid in missing:
                errors.add("missing_audit", {"transfer": tid}, rows={"transfers": [tid]})
    counts = {"audit_rows": n, "transfers": len(transfers), "audited": len(audited)}
    return errors.result("audit_complete", counts)
