"""The payment workload's knobs (a scenario's ``load.params``), checked before a drill.

Amounts follow a heavy-tailed distribution, as real payments do (log-normal: most are
small, a few are large), plus the corners that find bugs: transfers of exactly an
account's balance and just over it (the non-negative check's edge), and rare amounts far
larger than any balance. ``races`` is the share of transfers sent as concurrent pairs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["DEFAULTS", "validate_params"]

DEFAULTS: dict[str, float] = {
    #: share of transfers sent as a concurrent pair (double submit, withdrawal race)
    "races": 0.04,
    #: log-normal amounts in minor units: median and shape (sigma of the log)
    "amount_median": 60.0,
    "amount_sigma": 1.3,
    #: share of transfers that move exactly the source's balance, or one unit more
    "at_balance": 0.03,
    #: share of transfers of a very large amount (most are refused: insufficient funds)
    "huge": 0.005,
}
#: the api's bound on one amount (payments/api.py: _MAX_AMOUNT)
MAX_AMOUNT = 10**15


def validate_params(params: Mapping[str, Any]) -> dict[str, float]:
    """The params with defaults filled; ``ValueError`` naming the first bad one."""
    unknown = sorted(set(params) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"unknown payments load param {unknown[0]!r}; "
                         f"known: {', '.join(DEFAULTS)}")
    out = dict(DEFAULTS)
    for name, value in params.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"load param {name!r} must be a number, got {value!r}")
        out[name] = float(value)
    for share in ("races", "at_balance", "huge"):
        if not 0.0 <= out[share] <= 1.0:
            raise ValueError(f"load param {share!r} is a share between 0 and 1")
    if out["races"] + out["at_balance"] + out["huge"] > 1.0:
        raise ValueError("load params races + at_balance + huge must not exceed 1")
    if not 1.0 <= out["amount_median"] <= MAX_AMOUNT:
        raise ValueError(f"load param 'amount_median' must be between 1 and {MAX_AMOUNT}")
    if not 0.0 <= out["amount_sigma"] <= 5.0:
        raise ValueError("load param 'amount_sigma' must be between 0 and 5")
    return out
