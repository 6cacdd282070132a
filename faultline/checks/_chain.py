"""The audit hash chain, implemented from its contract (docs/audit-chain.md) alone.

The checker recomputes every row's hash with this module and never with the code of
the system under test: were the system to change its formula consistently (in its code
and its database together), a checker that borrowed the formula would find every row
intact. This one reports the rows as tampered.

Contract, in short: ``hash = hex(sha256(utf8(prev_hash|seq|entity|entity_id|action|
payload)))``, ``prev_hash`` of the first row is :data:`GENESIS_HASH`, ``payload`` is the
stored canonical JSON text (sorted keys, compact separators, UTF-8, the float format
of :func:`canonical_float`).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from json.encoder import encode_basestring
from typing import Any

__all__ = [
    "GENESIS_HASH",
    "canonical_float",
    "canonical_payload",
    "chain_hash",
    "chain_text",
    "row_hash",
]

#: ``prev_hash`` of the row with ``seq`` 1
GENESIS_HASH = "0" * 64

_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1


def canonical_float(x: float) -> str:
    """The shortest text that reads back as ``x``, positioned as the contract says.

    Decimal notation while the leading digit's power of ten ``e`` is in [-5, 16)
    (``100.0``, ``0.00001``, an integral value keeps ``.0``), else ``d[.ddd]e±X``
    with no padding of the exponent (``1e+16``, ``1e-7``, ``2.5e+300``). Not finite:
    ``null``.
    """
    if not math.isfinite(x):
        return "null"
    if x == 0:
        return "-0.0" if math.copysign(1.0, x) < 0 else "0.0"
    sign = "-" if x < 0 else ""
    text = repr(abs(x))  # the shortest round-trip digits
    mantissa, _, exp_text = text.partition("e")
    whole, _, frac = mantissa.partition(".")
    digits = whole + frac
    point = len(whole) + (int(exp_text) if exp_text else 0)
    stripped = digits.lstrip("0")
    point -= len(digits) - len(stripped)
    digits = stripped.rstrip("0") or "0"
    exp = point - 1
    if -5 <= exp < 16:
        if point <= 0:
            out = "0." + "0" * -point + digits
        elif point >= len(digits):
            out = digits + "0" * (point - len(digits)) + ".0"
        else:
            out = digits[:point] + "." + digits[point:]
    else:
        tail = "." + digits[1:] if len(digits) > 1 else ""
        out = f"{digits[0]}{tail}e{'+' if exp > 0 else '-'}{abs(exp)}"
    return sign + out


def _encode(value: Any, out: list[str]) -> None:
    if isinstance(value, str):
        out.append(encode_basestring(value))
    elif value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        if not _INT_MIN <= value <= _INT_MAX:
            raise ValueError(f"integer {value} is outside the canonical range")
        out.append(str(int(value)))
    elif isinstance(value, float):
        out.append(canonical_float(value))
    elif isinstance(value, Mapping):
        items = sorted(value.items(), key=_key_of)
        out.append("{")
        for i, (k, v) in enumerate(items):
            if i:
                out.append(",")
            out.append(encode_basestring(k))
            out.append(":")
            _encode(v, out)
        out.append("}")
    elif isinstance(value, list | tuple):
        out.append("[")
        for i, v in enumerate(value):
            if i:
                out.append(",")
            _encode(v, out)
        out.append("]")
    else:
        raise TypeError(f"{type(value).__name__} is not a JSON value of the audit contract")


def _key_of(item: tuple[Any, Any]) -> str:
    key = item[0]
    if not isinstance(key, str):
        raise TypeError(f"object key {key!r} is not a string")
    return key  # code-point order, which is UTF-8 byte order


def canonical_payload(payload: Any) -> str:
    """The canonical text of a payload; a ``str`` is the stored text itself."""
    if isinstance(payload, str):
        return payload
    out: list[str] = []
    _encode(payload, out)
    return "".join(out)


def chain_text(prev_hash: Any, seq: Any, entity: Any, entity_id: Any, action: Any,
               payload: Any) -> bytes:
    """The bytes a row's hash is taken of."""
    return "|".join(
        (
            str(prev_hash),
            str(seq) if seq.__class__ is int else str(int(seq)),
            str(entity),
            str(entity_id),
            str(action),
            payload if isinstance(payload, str) else canonical_payload(payload),
        )
    ).encode("utf-8")


def chain_hash(prev_hash: Any, seq: Any, entity: Any, entity_id: Any, action: Any,
               payload: Any) -> str:
    """The ``hash`` a row must carry (lowercase hex SHA-256)."""
    return hashlib.sha256(chain_text(prev_hash, seq, entity, entity_id, action, payload)).hexdigest()


def row_hash(prev_hash: Any, row: Mapping[str, Any]) -> str:
    """:func:`chain_hash` of a row's fields, linked to ``prev_hash``."""
    return chain_hash(prev_hash, row["seq"], row["entity"], row["entity_id"], row["action"],
                      row["payload"])
