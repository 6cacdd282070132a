"""The wallet stack's deliberate bugs, switched on by ``WALLET_BUGS`` (a comma list).

Each is a mistake real payment code has shipped with; a drill must catch it. The
wallet, its notifier and the merchant receiver read this table; the drill profile
publishes it (``wallet.drill``) so that ``faultline run --bugs NAME`` knows the names.
"""

from __future__ import annotations

import os

__all__ = ["BUGS", "active"]

#: name -> what the code then does wrong
BUGS: dict[str, str] = {
    "idempotency_after_commit": (
        "the idempotency record is saved in its own transaction after the payment "
        "commits, so a lost acknowledgement of the payment's commit followed by the "
        "client's retry with the same key charges the payer twice"),
    "unlocked_balance_check": (
        "the funds check reads the payer's balance without locking its row (no SELECT "
        "... FOR UPDATE), so two concurrent payments from one wallet both see the old "
        "balance, both pass, and the wallet goes negative"),
    "webhook_marked_before_send": (
        "the notifier marks a webhook delivered when it claims it, before sending it, so "
        "a delivery that fails is never retried: the merchant never hears of the payment"),
    "merchant_applies_twice": (
        "the merchant's webhook receiver applies every delivery it receives, without "
        "remembering event ids, so a redelivery (its 200 was lost) is counted twice"),
}


def active() -> frozenset[str]:
    """The bugs switched on for this process (unknown names are refused at start)."""
    names = frozenset(b.strip() for b in os.environ.get("WALLET_BUGS", "").split(",")
                      if b.strip())
    unknown = sorted(names - set(BUGS))
    if unknown:
        raise SystemExit(f"WALLET_BUGS: unknown bug(s) {', '.join(unknown)}; "
                         f"known: {', '.join(sorted(BUGS))}")
    return names
