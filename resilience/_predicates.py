"""Normalising "which exceptions/results" arguments into fast predicates."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

__all__ = ["ExceptionFilter", "exception_predicate"]

ExceptionFilter = (
    type[BaseException] | tuple[type[BaseException], ...] | Callable[[BaseException], bool]
)


def exception_predicate(value: ExceptionFilter, what: str) -> Callable[[BaseException], bool]:
    """Turn an exception type, a tuple of types, or a predicate into a predicate."""
    if isinstance(value, type) and issubclass(value, BaseException):
        exc_type = value
        return lambda exc: isinstance(exc, exc_type)
    if isinstance(value, tuple):
        for item in value:
            if not (isinstance(item, type) and issubclass(item, BaseException)):
                raise TypeError(f"{what} must hold exception types, got {item!r}")
        types = value
        return lambda exc: isinstance(exc, types)
    if callable(value):
        return cast(Callable[[BaseException], bool], value)
    raise TypeError(
        f"{what} must be an exception type, a tuple of them, or a predicate, got {value!r}"
    )


def exception_types(value: Any) -> tuple[type[BaseException], ...] | None:
    """The tuple of exception types ``value`` stands for, or ``None`` if it is a predicate."""
    if isinstance(value, type) and issubclass(value, BaseException):
        return (value,)
    if isinstance(value, tuple) and all(
        isinstance(v, type) and issubclass(v, BaseException) for v in value
    ):
        return value
    return None
