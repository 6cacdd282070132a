"""The API error, with Toxiproxy's messages and status codes."""

from __future__ import annotations

__all__ = [
    "APIError",
    "bad_request",
    "invalid_stream",
    "invalid_toxic_type",
    "missing_field",
    "proxy_already_exists",
    "proxy_not_found",
    "toxic_already_exists",
    "toxic_not_found",
]


class APIError(Exception):
    """An error the HTTP API reports as ``{"error": message, "status": status}``."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.message = message
        self.status = status

    def to_json(self) -> dict[str, object]:
        """The body Toxiproxy sends for this error."""
        return {"error": self.message, "status": self.status}


def bad_request(detail: str) -> APIError:
    """Toxiproxy's ``ErrBadRequestBody`` joined with a detail."""
    return APIError(f"bad request body: {detail}", 400)


def missing_field(detail: str) -> APIError:
    """Toxiproxy's ``ErrMissingField`` joined with the field's name."""
    return APIError(f"missing required field: {detail}", 400)


def proxy_not_found() -> APIError:
    """Toxiproxy's ``PROXY_NOT_FOUND`` error."""
    return APIError("proxy not found", 404)

def proxy_already_exists() -> APIError:
    """Toxiproxy's ``PROXY_ALREADY_EXISTS`` error."""
    return APIError("proxy already exists", 409)

def invalid_stream() -> APIError:
    """Toxiproxy's ``INVALID_STREAM`` error."""
    return APIError("stream was invalid, can be either upstream or downstream", 400)

def invalid_toxic_type() -> APIError:
    """Toxiproxy's ``INVALID_TOXIC_TYPE`` error."""
    return APIError("invalid toxic type", 400)

def toxic_already_exists() -> APIError:
    """Toxiproxy's ``TOXIC_ALREADY_EXISTS`` error."""
    return APIError("toxic already exists", 409)

def toxic_not_found() -> APIError:
    """Toxiproxy's ``TOXIC_NOT_FOUND`` error."""
    return APIError("toxic not found", 404)
