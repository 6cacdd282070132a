"""Client-facing errors: one JSON shape, never a stack trace."""

from __future__ import annotations

from typing import Any

import orjson

__all__ = ["ApiError", "error_body"]


class ApiError(Exception):
    """An error answered to the client as ``{"error": {"code", "message", "field"}}``."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field
        self.headers = headers or {}


def error_body(code: str, message: str, field: str | None = None) -> bytes:
    """The JSON error body."""
    err: dict[str, Any] = {"code": code, "message": message, "field": field}
    return orjson.dumps({"error": err})
