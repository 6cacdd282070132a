"""The admin second factor: a TOTP code, accepted once, with a lockout after guessing.

Three rules, held in PostgreSQL (``admin_totp_guard``, migrations/0004) under a row lock,
so they hold across any number of api processes:

- a code is accepted only for a time step later than the last accepted one (a replayed
  code, or an older one still inside the clock-drift window, is ``totp_reused``);
- ``max_failures`` wrong (or replayed) codes in a row lock the admin key out for
  ``lockout_s`` seconds: 429 ``totp_locked`` with ``Retry-After``, even for a valid code;
- codes are compared in constant time, against every step of the window every time.

Only callers holding the admin API key get here (it is checked first), so a stranger
cannot lock the admin out by guessing.
"""

from __future__ import annotations

import hmac
import math
import re
import time
from typing import Any

import pyotp

from payments._errors import ApiError
from payments._input import TOTP_PATTERN

__all__ = ["STEP_S", "check_totp", "matching_step"]

STEP_S = 30
_WINDOW = (-1, 0, 1)  # one step of clock drift either way, as pyotp's valid_window=1
_CODE = re.compile(TOTP_PATTERN)

_LOCKED = "too many wrong TOTP codes: admin calls with this key are locked for a while"
_LOCK = ("INSERT INTO admin_totp_guard (key_hash) VALUES ($1) ON CONFLICT DO NOTHING")
# clock_timestamp(), not now(): now() is when the transaction began, and a transaction
# that waited for the row lock began before the one that set the lockout committed.
_READ = ("SELECT last_step, failures, locked_until,"
         " extract(epoch FROM locked_until - clock_timestamp()) AS remaining"
         " FROM admin_totp_guard WHERE key_hash = $1 FOR UPDATE")


def matching_step(secret: str, code: str, now: float) -> int | None:
    """The time step whose code equals ``code`` within the drift window, or ``None``.

    Every candidate is computed and compared (``hmac.compare_digest``): the time taken
    does not depend on which step, or how much of the code, matched.
    """
    totp = pyotp.TOTP(secret)
    current = int(now // STEP_S)
    given = code.encode() if _CODE.fullmatch(code) else b"\x00" * 6
    found: int | None = None
    for delta in _WINDOW:
        step = current + delta
        if hmac.compare_digest(totp.generate_otp(step).encode(), given) and found is None:
            found = step
    return found


def _retry_after(remaining: float) -> dict[str, str]:
    return {"Retry-After": str(max(1, math.ceil(remaining)))}


async def check_totp(conn: Any, key_hash: bytes, secret: str, code: str, *,
                     max_failures: int, lockout_s: float) -> None:
    """Accept ``code`` for the admin key ``key_hash`` or raise the ``ApiError`` to answer.

    One short transaction on the key's guard row; the row lock serializes concurrent
    attempts (from any process), so a burst of guesses is counted exactly.
    """
    refusal: ApiError | None = None
    async with conn.transaction():
        await conn.execute(_LOCK, key_hash)
        row = await conn.fetchrow(_READ, key_hash)
        if row["locked_until"] is not None and row["remaining"] > 0:
            # Nothing to write: raising here only ends the transaction (and the row lock).
            raise ApiError(429, "totp_locked", _LOCKED, "X-TOTP",
                           headers=_retry_after(float(row["remaining"])))
        step = matching_step(secret, code, time.time())
        if step is not None and step > row["last_step"]:
            await conn.execute("UPDATE admin_totp_guard SET last_step = $2, failures = 0,"
                               " locked_until = NULL WHERE key_hash = $1", key_hash, step)
            return
        failures = row["failures"] + 1
        if failures >= max_failures:
            await conn.execute(
                "UPDATE admin_totp_guard SET failures = 0, locked_until ="
                " clock_timestamp() + make_interval(secs => $2) WHERE key_hash = $1",
                key_hash, lockout_s)
            refusal = ApiError(429, "totp_locked", _LOCKED, "X-TOTP",
                               headers=_retry_after(lockout_s))
        else:
            await conn.execute("UPDATE admin_totp_guard SET failures = $2 WHERE key_hash = $1",
                               key_hash, failures)
            refusal = (ApiError(401, "totp_reused", "this TOTP code was already used; wait"
                                " for the next one", "X-TOTP") if step is not None else
                       ApiError(401, "totp_invalid", "TOTP code is wrong or expired", "X-TOTP"))
    # Raised after the commit: the failure count must be kept, not rolled back.
    raise refusal
