"""What the api accepts from a client: every input checked completely before it is used.

Why a module of its own: one merchant's malformed input must never reach PostgreSQL, where
an error would look like a database failure (a NUL byte in a path id, or ``"EUR\\n"`` that
``^[A-Z]{3}$`` lets through because ``$`` also matches before a final newline, opened the
shared database breaker for every merchant). So every pattern here is applied with
``re.fullmatch``, every string has a length cap, control characters are refused, and a
refusal is a 4xx naming the field. The OpenAPI document (``_openapi.py``) states the same
rules from the constants below.

Request bodies are read as they stream, counting bytes, and refused with 413 the moment
they pass ``MAX_BODY`` (Content-Length and chunked alike), so a 128 MB body costs the
api at most one body limit plus one transport buffer of memory.
"""

from __future__ import annotations

import re
from typing import Any

import orjson
from starlette.requests import Request

from payments._errors import ApiError

__all__ = [
    "BODY_READ",
    "CURRENCY_PATTERN",
    "HOLDER_MAX_FIELDS",
    "HOLDER_NAME_PATTERN",
    "HOLDER_VALUE_MAX",
    "IDEMPOTENCY_KEY_MAX",
    "IDEMPOTENCY_KEY_PATTERN",
    "ID_MAX",
    "ID_PATTERN",
    "LIMIT_DEFAULT",
    "LIMIT_MAX",
    "MAX_BODY",
    "TOTP_PATTERN",
    "account_id_field",
    "currency_field",
    "holder_field",
    "idempotency_key",
    "json_body",
    "path_id",
    "statement_limit",
    "unknown_fields",
]

MAX_BODY = 64 * 1024
ID_MAX = 64
# Patterns are written for both engines that read them: Python's (with fullmatch) here and
# ECMA's (anchored with ^...$, which has no trailing-newline quirk) in the OpenAPI document.
ID_PATTERN = r"[A-Za-z0-9_\-]{1,64}"
CURRENCY_PATTERN = r"[A-Z]{3}"
IDEMPOTENCY_KEY_MAX = 255
IDEMPOTENCY_KEY_PATTERN = r"[\x21-\x7e]([\x20-\x7e]{0,253}[\x21-\x7e])?"  # visible ASCII
HOLDER_NAME_PATTERN = r"[A-Za-z0-9_]{1,64}"
HOLDER_MAX_FIELDS = 16
HOLDER_VALUE_MAX = 256
TOTP_PATTERN = r"[0-9]{6}"
LIMIT_DEFAULT, LIMIT_MAX = 50, 500
# Set in the ASGI scope once the body was read to its end; an error answered before that
# closes the connection instead of draining an unread (maybe huge) body.
BODY_READ = "payments.body_read"

_ID = re.compile(ID_PATTERN)
_CURRENCY = re.compile(CURRENCY_PATTERN)
_IDEMPOTENCY_KEY = re.compile(IDEMPOTENCY_KEY_PATTERN)
_HOLDER_NAME = re.compile(HOLDER_NAME_PATTERN)
_LIMIT = re.compile(r"[0-9]{1,3}")
# C0 and C1 controls, DEL, and the Unicode line/paragraph separators: none belongs in a
# name or an IBAN, and each has broken a log line or a terminal somewhere.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_TOO_LARGE = f"request bodies are limited to {MAX_BODY} bytes"


def _too_large() -> ApiError:
    # Connection: close - the rest of the body is never read; uvicorn closes the socket
    # after this answer instead of reading (and discarding) whatever the client still sends.
    return ApiError(413, "body_too_large", _TOO_LARGE, headers={"Connection": "close"})


async def json_body(request: Request) -> dict[str, Any]:
    """The request's JSON object, read while counting bytes; 415, 413 or 400 otherwise."""
    ctype = request.headers.get("content-type", "")
    media, _, params = ctype.partition(";")
    charset = params.strip().lower()
    if media.strip().lower() != "application/json" or charset not in ("", "charset=utf-8"):
        raise ApiError(415, "unsupported_media_type",
                       "request bodies must be application/json (UTF-8)", "Content-Type")
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isascii() or not declared.isdigit()
                                 or int(declared) > MAX_BODY):
        raise _too_large()
    raw = bytearray()
    receive = request.receive
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client went away mid-body
            raise ApiError(400, "incomplete_body", "the request body was not received",
                           headers={"Connection": "close"})
        raw += message.get("body", b"")
        if len(raw) > MAX_BODY:
            raise _too_large()
        if not message.get("more_body", False):
            break
    request.scope[BODY_READ] = True
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ApiError(400, "invalid_json", "request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_json", "request body must be a JSON object")
    return body


def unknown_fields(body: dict[str, Any], allowed: frozenset[str]) -> None:
    """422 naming the first field that is not part of the request schema."""
    unknown = body.keys() - allowed
    if unknown:
        name = sorted(unknown)[0]
        shown = name if _HOLDER_NAME.fullmatch(name) else "(invalid name)"
        raise ApiError(422, "unknown_field", f"unexpected field {shown}", shown)


def _string(body: dict[str, Any], name: str, pattern: re.Pattern[str], rule: str) -> str:
    value = body.get(name)
    if value is None:
        raise ApiError(422, "missing_field", f"{name} is required", name)
    if not isinstance(value, str) or pattern.fullmatch(value) is None:
        raise ApiError(422, "invalid_field", f"{name} must be {rule}", name)
    return value


def account_id_field(body: dict[str, Any], name: str) -> str:
    """An account id in a body field: 1-64 of ``A-Z a-z 0-9 _ -``."""
    return _string(body, name, _ID, f"an account id (1-{ID_MAX} of A-Z a-z 0-9 _ -)")


def currency_field(body: dict[str, Any]) -> str:
    """An ISO 4217-style code: exactly three capital letters, nothing after them."""
    return _string(body, "currency", _CURRENCY, "three capital letters (ISO 4217)")


def holder_field(body: dict[str, Any]) -> dict[str, str] | None:
    """Account holder details: a flat object of at most 16 short text fields."""
    holder = body.get("holder")
    if holder is None:
        return None
    if not isinstance(holder, dict) or len(holder) > HOLDER_MAX_FIELDS:
        raise ApiError(422, "invalid_field",
                       f"holder must be an object of at most {HOLDER_MAX_FIELDS} text fields",
                       "holder")
    for key, value in holder.items():
        if _HOLDER_NAME.fullmatch(key) is None:
            raise ApiError(422, "invalid_field",
                           "holder field names are 1-64 of A-Z a-z 0-9 _", "holder")
        if (not isinstance(value, str) or len(value) > HOLDER_VALUE_MAX
                or _CONTROL.search(value) is not None):
            raise ApiError(422, "invalid_field",
                           f"holder.{key} must be text of at most {HOLDER_VALUE_MAX} characters"
                           " without control characters", "holder")
    return holder


def path_id(request: Request, what: str) -> str:
    """The ``{id}`` of the path; a malformed one names nothing, so it is the same 404 as
    an unknown id (and never reaches the database)."""
    value: str = request.path_params["id"]
    if _ID.fullmatch(value) is None:
        raise ApiError(404, "not_found", f"no such {what}", "id")
    return value


def idempotency_key(request: Request) -> str:
    """The Idempotency-Key header: 1-255 visible ASCII characters (inner spaces allowed)."""
    key = request.headers.get("idempotency-key", "").strip()
    if not key:
        raise ApiError(400, "idempotency_key_required",
                       "the Idempotency-Key header is required", "Idempotency-Key")
    if len(key) > IDEMPOTENCY_KEY_MAX or _IDEMPOTENCY_KEY.fullmatch(key) is None:
        raise ApiError(400, "invalid_idempotency_key",
                       f"Idempotency-Key must be 1-{IDEMPOTENCY_KEY_MAX} visible ASCII"
                       " characters", "Idempotency-Key")
    return key


def statement_limit(request: Request) -> int:
    """``?limit=`` of a statement: an integer from 1 to 500 (default 50)."""
    raw = request.query_params.get("limit")
    if raw is None:
        return LIMIT_DEFAULT
    if _LIMIT.fullmatch(raw) is None or not 1 <= int(raw) <= LIMIT_MAX:
        raise ApiError(422, "invalid_field", f"limit must be an integer from 1 to {LIMIT_MAX}",
                       "limit")
    return int(raw)
