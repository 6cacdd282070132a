"""Toxic types a scenario may name, and the attributes each one takes.

Toxiproxy's own toxics plus the fault proxy's extras (docs/contracts.md §2) and
``down`` (the hop's proxy disabled: connections refused). Millisecond attributes
accept a number (ms) or a duration string (``"200ms"``, ``"2s"``).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from ._duration import parse_duration

__all__ = ["TOXIC_ATTRIBUTES", "TOXIC_TYPES", "validate_attributes"]


def _to_ms(v: Any) -> Any:
    if isinstance(v, str):
        return round(parse_duration(v) * 1000)
    return v


Millis = Annotated[int, BeforeValidator(_to_ms), Field(ge=0)]
Bytes = Annotated[int, Field(ge=0)]


class _Attrs(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Latency(_Attrs):
    latency: Millis
    jitter: Millis = 0


class Bandwidth(_Attrs):
    rate: Annotated[int, Field(ge=0, description="KB/s")]


class SlowClose(_Attrs):
    delay: Millis


class Timeout(_Attrs):
    timeout: Millis = 0


class ResetPeer(_Attrs):
    timeout: Millis = 0


class Slicer(_Attrs):
    average_size: Annotated[int, Field(ge=1)]
    size_variation: Bytes = 0
    delay: Annotated[int, Field(ge=0, description="microseconds")] = 0


class LimitData(_Attrs):
    bytes: Bytes


class LostAck(_Attrs):
    after_bytes: Bytes | None = None


class ConnectDelay(_Attrs):
    delay: Millis


class HttpError(_Attrs):
    status: Annotated[int, Field(ge=400, le=599)] = 503
    retry_after: Annotated[float, Field(ge=0)] | None = None


class HalfClose(_Attrs):
    after_bytes: Bytes = 0


class Stall(_Attrs):
    after_bytes: Bytes = 0
    timeout: Millis = 0


class Down(_Attrs):
    pass


#: toxic type -> its attribute model
TOXIC_ATTRIBUTES: dict[str, type[_Attrs]] = {
    "latency": Latency,
    "bandwidth": Bandwidth,
    "slow_close": SlowClose,
    "timeout": Timeout,
    "reset_peer": ResetPeer,
    "slicer": Slicer,
    "limit_data": LimitData,
    "lost_ack": LostAck,
    "connect_delay": ConnectDelay,
    "http_error": HttpError,
    "half_close": HalfClose,
    "stall": Stall,
    "down": Down,
}
TOXIC_TYPES: tuple[str, ...] = tuple(TOXIC_ATTRIBUTES)
#: toxics that act on a connect or a close, not on a request/reply turn (no ``scope:
#: exchange``), and ``down``, which is no toxic at all
CONNECTION_ONLY = frozenset({"slow_close", "connect_delay", "down"})


def validate_attributes(toxic: str, attributes: dict[str, Any]) -> dict[str, Any]:
    """The attributes of a ``toxic`` checked and normalised (ms as int, defaults filled).

    Raises ``ValueError`` naming the attribute and what was expected.
    """
    model = TOXIC_ATTRIBUTES[toxic]
    try:
        parsed = model.model_validate(attributes)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            attr = ".".join(str(p) for p in err["loc"]) or "attributes"
            if err["type"] == "extra_forbidden":
                allowed = ", ".join(model.model_fields) or "none"
                problems.append(f"{attr!r} is not an attribute of a {toxic} toxic (allowed: {allowed})")
            elif err["type"] == "missing":
                problems.append(f"a {toxic} toxic needs {attr!r}")
            else:
                problems.append(f"{toxic} attribute {attr!r}: {err['msg']}")
        raise ValueError("; ".join(problems)) from None
    return parsed.model_dump(exclude_none=True)
