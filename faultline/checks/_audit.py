"""The audit log: every transfer has its records, and the hash chain is intact.

Every row is rehashed with the contract's formula (``_chain.py``, docs/audit-chain.md),
never with the system's own code, in one streaming pass that keeps per row only its
seq, the codes of its ``prev_hash`` and ``hash``, and whether it rehashed.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from ._chain import GENESIS_HASH, canonical_payload, chain_hash, row_hash
from ._columns import MISSING, int_column, isin, require, uniq
from ._registry import checker
from ._result import CheckContext, CheckResult, ErrorCollector, Example
from ._snapshot import state_source, table

__all__ = ["GENESIS_HASH", "audit_complete", "chain_hash", "local_chain_hash"]

#: the fields of an audit row, in the order of the chain's text
_FIELDS = ("prev_hash", "seq", "entity", "entity_id", "action", "payload", "hash")
_TRANSFER = hash("transfer")


def local_chain_hash(prev_hash: str, row: Any) -> str:
    """The contract's hash of ``row`` linked to ``prev_hash`` (:func:`row_hash`)."""
    return row_hash(prev_hash, row)


def _text(value: Any, field: str) -> str:
    if value is MISSING:
        raise KeyError(field)
    return str(value)


def _tampered(rows: Any, base: int) -> list[int]:
    """Positions of the rows whose ``hash`` does not recompute (the hot loop: inlined;
    a field that is not text takes the slow branch, where a missing one fails)."""
    sha256 = hashlib.sha256
    bad = []
    for i, (prev, seq, entity, entity_id, action, payload, stored) in enumerate(rows):
        text = "|".join(
            (
                prev if prev.__class__ is str else _text(prev, "prev_hash"),
                str(seq) if seq.__class__ is int else str(int(seq)),
                entity if entity.__class__ is str else _text(entity, "entity"),
                entity_id if entity_id.__class__ is str else _text(entity_id, "entity_id"),
                action if action.__class__ is str else _text(action, "action"),
                payload if payload.__class__ is str else
                canonical_payload(payload) if payload is not MISSING else _text(payload, "payload"),
            )
        )
        if sha256(text.encode("utf-8")).hexdigest() != stored:
            bad.append(base + i)
    return bad


class _Chain:
    """The audit log read in one pass: columns, in the log's order."""

    def __init__(self, state: Any, ctx: CheckContext) -> None:
        source = state_source(state, ctx).tables["audit"]
        self.source = source
        seqs, prevs, hashes, transfer_rows, entity_ids = [], [], [], [], []
        self.tampered: list[int] = []
        n = 0
        for chunk in source.chunks(_FIELDS):
            seqs.append(int_column(require(chunk["seq"], "seq"), "seq"))
            prevs.append(chunk.codes("prev_hash", required=True))
            hashes.append(chunk.codes("hash", required=True))
            is_transfer = chunk.codes("entity", required=True) == _TRANSFER
            transfer_rows.append(is_transfer)
            entity_ids.append(chunk.codes("entity_id", required=True)[is_transfer])
            self.tampered += _tampered(chunk.tuples(_FIELDS), n)
            n += chunk.n
        cat = np.concatenate
        self.n = n
        self.seq = cat(seqs) if seqs else np.zeros(0, np.int64)
        self.prev = cat(prevs) if prevs else np.zeros(0, np.int64)
        self.hash = cat(hashes) if hashes else np.zeros(0, np.int64)
        self.audited = cat(entity_ids) if entity_ids else np.zeros(0, np.int64)
        # snapshots read the log ORDER BY seq; anything else is put in seq order
        self.order = np.arange(n)
        if n > 1 and not bool(np.all(self.seq[1:] >= self.seq[:-1])):
            self.order = np.argsort(self.seq, kind="stable")
            rank = np.empty(n, np.int64)
            rank[self.order] = np.arange(n)
            self.tampered = sorted(rank[self.tampered].tolist())
            self.seq, self.prev, self.hash = (self.seq[self.order], self.prev[self.order],
                                              self.hash[self.order])

    def rows(self, sorted_positions: list[int]) -> dict[int, dict[str, Any]]:
        """Rows by their position in seq order."""
        file_pos = {int(self.order[p]): p for p in sorted_positions}
        return {file_pos[fp]: row for fp, row in self.source.rows_at(file_pos).items()}


def audit_chain(state: Any, ctx: CheckContext) -> _Chain:
    """The run's audit log read and rehashed once (cached in ``ctx.cache``)."""
    cached = ctx.cache.get("audit_chain")
    if cached is None or cached[0] is not state:
        cached = (state, _Chain(state, ctx))
        ctx.cache["audit_chain"] = cached
    chain: _Chain = cached[1]
    return chain


@checker("audit_complete")
def audit_complete(history: Any, state: Any, ctx: CheckContext) -> CheckResult:
    """Every transfer has an audit record; seq has no gaps; each row's ``prev_hash`` is
    the previous row's ``hash`` and its ``hash`` recomputes (tampering shows here)."""
    errors = ErrorCollector()
    chain = audit_chain(state, ctx)
    seq, n = chain.seq, chain.n
    if n > 1:
        gaps = np.flatnonzero(seq[1:] != seq[:-1] + 1) + 1
        if len(gaps):
            before, after = seq[gaps - 1].tolist(), seq[gaps].tolist()
            errors.add_batch(
                ("audit_gap",), np.zeros(len(gaps), np.int64),
                lambda ps: [({"after_seq": before[p], "seq": after[p]}, (),
                             {"audit": [before[p], after[p]]}) for p in ps.tolist()],
                shapes={"audit_gap": (False, ("audit",))},
                severity=np.array(after) - np.array(before),
            )
    if n and int(seq[0]) == 1 and int(chain.prev[0]) != hash(GENESIS_HASH):
        prev = chain.rows([0])[0]["prev_hash"]
        errors.add("broken_chain", {"seq": 1, "prev_hash": prev, "expected": GENESIS_HASH},
                   rows={"audit": [1]})
    links = np.flatnonzero(chain.prev[1:] != chain.hash[:-1]) + 1 if n > 1 else np.zeros(0, int)
    if len(links):
        def link_examples(ps: Any) -> list[Example]:
            at = links[ps].tolist()
            rows = chain.rows(sorted(set(at) | {i - 1 for i in at}))
            return [({"seq": rows[i]["seq"], "prev_hash": rows[i]["prev_hash"],
                      "expected": rows[i - 1]["hash"]}, (),
                     {"audit": [rows[i - 1]["seq"], rows[i]["seq"]]}) for i in at]

        errors.add_batch(("broken_chain",), np.zeros(len(links), np.int64), link_examples,
                         shapes={"broken_chain": (False, ("audit",))})
    if chain.tampered:
        tampered = chain.tampered

        def tamper_examples(ps: Any) -> list[Example]:
            at = [tampered[p] for p in ps.tolist()]
            rows = chain.rows(at)
            return [({"seq": rows[i]["seq"], "entity": rows[i].get("entity"),
                      "entity_id": rows[i].get("entity_id")}, (), {"audit": [rows[i]["seq"]]})
                    for i in at]

        errors.add_batch(("tampered_audit_row",), np.zeros(len(tampered), np.int64),
                         tamper_examples, shapes={"tampered_audit_row": (False, ("audit",))})
    transfers = table(state, ctx, "transfers")
    ids = transfers.col("id")
    from ._acks import baseline_ids

    missing = np.flatnonzero(~isin(ids, chain.audited) & ~isin(ids, baseline_ids(ctx)))
    if len(missing):
        def missing_examples(ps: Any) -> list[Example]:
            rows = transfers.rows_at(missing[ps].tolist())
            return [({"transfer": rows[p]["id"]}, (), {"transfers": [rows[p]["id"]]})
                    for p in missing[ps].tolist()]

        errors.add_batch(("missing_audit",), np.zeros(len(missing), np.int64), missing_examples,
                         shapes={"missing_audit": (False, ("transfers",))})
    counts = {"audit_rows": n, "transfers": len(transfers),
              "audited": len(uniq(chain.audited))}
    return errors.result("audit_complete", counts)
