"""The wallet workload's knobs (a scenario's ``load.params``), checked before a drill.

Amounts are log-normal in minor units (most small, a few large). ``double_submit`` is
the share of payments sent twice at once with one key (a double click); ``drain_race``
the share sent as two payments that each spend the payer's whole balance at once (two
devices of one customer, or an attacker racing withdrawals). ``retries`` is how many
times a careful client retries a payment whose outcome it does not know.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["DEFAULTS", "validate_params"]

DEFAULTS: dict[str, float] = {
    "double_submit": 0.03,
    "drain_race": 0.03,
    #: log-normal amounts in minor units (cents): median and sigma of the log
    "amount_median": 1500.0,
    "amount_sigma": 1.0,
    #: retries (same key, same body) after an unknown outcome
    "retries": 3.0,
}
#: the API's bound on one amount, in minor units (wallet/service/views.py)
MAX_AMOUNT = 10**11


def validate_params(params: Mapping[str, Any]) -> dict[str, float]:
    """The params with defaults filled in; ``ValueError`` naming the first bad one."""
    unknown = sorted(set(params) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"unknown wallet load param {unknown[0]!r}; "
                         f"known: {', '.join(DEFAULTS)}")
    out = dict(DEFAULTS)
    for name, value in params.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"load param {name!r} must be a number, got {value!r}")
        out[name] = float(value)
    for share in ("double_submit", "drain_race"):
        if not 0.0 <= out[share] <= 1.0:
            raise ValueError(f"load param {share!r} is a share between 0 and 1")
    if out["double_submit"] + out["drain_race"] > 1.0:
        raise ValueError("load params double_submit + drain_race must not exceed 1")
    if not 1.0 <= out["amount_median"] <= MAX_AMOUNT:
        raise ValueError(f"load param 'amount_median' must be between 1 and {MAX_AMOUNT}")
    if not 0.0 <= out["amount_sigma"] <= 5.0:
        raise ValueError("load param 'amount_sigma' must be between 0 and 5")
    if out["retries"] != int(out["retries"]) or not 0 <= out["retries"] <= 10:
        raise ValueError("load param 'retries' must be a whole number from 0 to 10")
    return out
