"""Checking what the API is given: JSON, names, addresses, toxicity, scope, attributes.

Two kinds of messages. Where Toxiproxy itself rejects a request (a value of the wrong
JSON type), the message is Toxiproxy's own, word for word (``json: cannot unmarshal
string into Go struct field ...``), so clients that match on it keep working. Where
Toxiproxy accepts nonsense (a negative latency, a toxicity of 7, a status of 42, an
attribute nobody knows), Faultline rejects it with a 400 that names the field and says
what was expected; docs/proxy.md lists those differences.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from faultline.proxy._errors import APIError, bad_request

__all__ = [
    "INT64_MAX",
    "MAX_MS",
    "MAX_NAME",
    "SCOPES",
    "Attr",
    "check_name",
    "go_type_name",
    "parse_attributes",
    "parse_json",
    "parse_scope",
    "parse_toxicity",
]

INT64_MAX = 2**63 - 1
MAX_MS = 86_400_000  # one day: a longer fault is a mistake, and timers overflow far later
MAX_NAME = 200
SCOPES = ("connection", "exchange")


@dataclass(frozen=True)
class Attr:
    """One toxic attribute: its JSON type, default and accepted range, and its unit."""

    type: type
    default: Any
    min: int | None = None
    max: int | None = None
    unit: str = ""

    @classmethod
    def ms(cls, default: int = 0) -> Attr:
        """A duration in milliseconds, 0..one day."""
        return cls(int, default, 0, MAX_MS, "ms")

    @classmethod
    def count(cls, default: int = 0, unit: str = "bytes", minimum: int = 0) -> Attr:
        """A non-negative quantity (bytes, KB/s...)."""
        return cls(int, default, minimum, INT64_MAX, unit)


def go_type_name(value: object) -> str:
    """How Go's decoder names a JSON value's type in its errors."""
    return {bool: "bool", int: "number", float: "number", str: "string", list: "array",
            dict: "object", type(None): "null"}.get(type(value), type(value).__name__)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"invalid JSON value {name} (JSON has no NaN or Infinity)")


def parse_json(body: bytes) -> Any:
    """A request body as JSON; 400 with a plain message (never a Python internal)."""
    if not body.strip():
        raise bad_request("EOF")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise bad_request("the body is not UTF-8") from None
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise bad_request(f"invalid JSON at line {exc.lineno} column {exc.colno}: "
                          f"{exc.msg}") from None
    except RecursionError:
        raise bad_request("JSON nested too deeply") from None
    except ValueError as exc:  # NaN/Infinity, or an integer with thousands of digits
        raise bad_request(str(exc).split(";")[0]) from None


def check_name(value: str, what: str) -> None:
    """A proxy or toxic name must be addressable in a URL path and printable."""
    if len(value) > MAX_NAME:
        raise APIError(f"{what} is longer than {MAX_NAME} characters", 400)
    if "/" in value or any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise APIError(f"{what} {value!r} must not contain '/' or control characters "
                       "(it is part of the API's URLs)", 400)


def parse_toxicity(value: object, current: float) -> float:
    """A toxicity from JSON: a number in [0, 1] (``null`` keeps ``current``)."""
    if value is None:
        return current
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise bad_request(
            f"json: cannot unmarshal {go_type_name(value)} into Go struct field "
            "ToxicWrapper.toxicity of type float32"
        )
    number = float(value)
    if math.isnan(number) or not 0.0 <= number <= 1.0:
        raise APIError(f"toxicity must be a number between 0 and 1 (a probability), "
                       f"got {value!r}", 400)
    return number


def parse_scope(value: object, current: str, kind_name: str, allowed: bool) -> str:
    """``scope``: ``"connection"`` (Toxiproxy's per-connection roll) or ``"exchange"``."""
    if value is None:
        return current
    if not isinstance(value, str) or value not in SCOPES:
        raise APIError(f'scope must be "connection" or "exchange", got {value!r}', 400)
    if value == "exchange" and not allowed:
        raise APIError(f'scope "exchange" means nothing for {kind_name}: it does not act '
                       "on the bytes of a request/reply turn", 400)
    return value


def parse_attributes(kind_name: str, specs: dict[str, Attr], raw: object,
                     base: dict[str, Any] | None) -> dict[str, Any]:
    """Typed, checked attributes: ``raw`` merged over ``base`` (or the defaults).

    As Go's decoder: ``null`` keeps the current value and a value of the wrong JSON
    type is an error with Go's message. Unlike Toxiproxy: an unknown attribute, or a
    value out of range, is a 400 naming it.
    """
    attrs = dict(base) if base is not None else {k: a.default for k, a in specs.items()}
    if raw is None:
        return attrs
    if not isinstance(raw, dict):
        raise bad_request(f"json: cannot unmarshal {go_type_name(raw)} into attributes")
    for key, value in raw.items():
        spec = specs.get(key)
        if spec is None:
            known = ", ".join(specs) or "none"
            raise APIError(f"{kind_name}: unknown attribute {key!r} (its attributes: {known})",
                           400)
        if value is None:
            continue
        is_int = isinstance(value, int) and not isinstance(value, bool)
        ok = is_int if spec.type is int else isinstance(value, spec.type)
        if not ok or (is_int and not -INT64_MAX - 1 <= value <= INT64_MAX):
            want = "int64" if spec.type is int else spec.type.__name__
            raise bad_request(
                f"json: cannot unmarshal {go_type_name(value)} into Go struct field "
                f"{kind_name}.attributes.{key} of type {want}"
            )
        if is_int and (
            (spec.min is not None and value < spec.min)
            or (spec.max is not None and value > spec.max)
        ):
            unit = f" {spec.unit}" if spec.unit else ""
            raise APIError(f"{kind_name}: attribute {key} must be between {spec.min} and "
                           f"{spec.max}{unit}, got {value}", 400)
        attrs[key] = value
    return attrs
