"""Names shared by the relay, the worker and the snapshot (contracts §4)."""

from __future__ import annotations

__all__ = ["DEAD_LETTERS", "GROUP", "STREAM", "parse_stream_id"]

STREAM = "payments.events"
GROUP = "ledger-projector"
DEAD_LETTERS = "payments.events.dead"


def parse_stream_id(stream_id: str | bytes) -> tuple[int, int]:
    """``"1700000000000-3"`` -> ``(1700000000000, 3)`` for ordering."""
    text = stream_id.decode() if isinstance(stream_id, bytes) else stream_id
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)
