"""The api's OpenAPI 3.1 document (hand-written: no schema framework on the hot path).

It states the rules ``_input.py`` enforces, built from the same constants, and every
status an operation really answers; ``tests/payments/test_payments_schemathesis.py``
holds the running api to it. Patterns are ECMA regexes anchored with ``^...$`` (no
trailing-newline quirk there), and strings carry ``maxLength`` so a generator that reads
them with Python's ``re`` cannot slip a final newline past a pattern either.
"""

from __future__ import annotations

from typing import Any

from payments import _input as inp

__all__ = ["OPENAPI"]

_MAX_AMOUNT = 10**15


def _anchored(pattern: str) -> str:
    return f"^{pattern}$"


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


_RETRY_AFTER = {"Retry-After": {"description": "seconds to wait before retrying",
                                "schema": {"type": "string", "pattern": "^[0-9]{1,6}$"}}}
_WHY = {
    "400": "malformed request (JSON, Idempotency-Key)",
    "401": "missing or invalid API key (or TOTP for admin calls)",
    "402": "declined by risk checks",
    "404": "no such resource for this merchant (unknown, another merchant's, malformed id)",
    "409": "a request with this Idempotency-Key is in flight, or conflicts with stored data",
    "413": "request body larger than 64 KiB",
    "415": "request body is not application/json",
    "422": "a field is missing, unknown or invalid; or the ledger refused the transfer",
    "429": "too many wrong TOTP codes: admin calls locked for a while",
    "503": "a dependency is unavailable; retry later (same Idempotency-Key)",
}
_WITH_RETRY_AFTER = {"409", "429", "503"}


def _error(code: str) -> dict[str, Any]:
    resp: dict[str, Any] = {"description": _WHY[code],
                            "content": {"application/json": {"schema": _ref("Error")}}}
    if code in _WITH_RETRY_AFTER:
        resp["headers"] = _RETRY_AFTER
    return resp


def _op(op_id: str, summary: str, ok: str, schema: str | None = None, body: str | None = None,
        params: list[dict[str, Any]] | None = None, errors: tuple[str, ...] = (),
        links: tuple[str, ...] = ()) -> dict[str, Any]:
    op: dict[str, Any] = {"operationId": op_id, "summary": summary,
                          "responses": {ok: {"description": "ok"}}}
    if schema:
        op["responses"][ok]["content"] = {"application/json": {"schema": _ref(schema)}}
    if links:  # the created resource can be read back by its id
        op["responses"][ok]["links"] = {
            target: {"operationId": target, "parameters": {"id": "$response.body#/id"}}
            for target in links}
    for code in errors:
        op["responses"][code] = _error(code)
    if body:
        op["requestBody"] = {"required": True,
                             "content": {"application/json": {"schema": _ref(body)}}}
    if params:
        op["parameters"] = params
    return op


def _id_param(what: str) -> dict[str, Any]:
    return {"name": "id", "in": "path", "required": True, "description": f"{what} id",
            "schema": {"type": "string", "minLength": 1, "maxLength": inp.ID_MAX,
                       "pattern": _anchored(inp.ID_PATTERN)}}


_ACCOUNT_ID = {"type": "string", "minLength": 1, "maxLength": inp.ID_MAX,
               "pattern": _anchored(inp.ID_PATTERN)}
_CURRENCY = {"type": "string", "minLength": 3, "maxLength": 3,
             "pattern": _anchored(inp.CURRENCY_PATTERN)}
_IDEM = {"name": "Idempotency-Key", "in": "header", "required": True,
         "schema": {"type": "string", "minLength": 1, "maxLength": inp.IDEMPOTENCY_KEY_MAX,
                    "pattern": _anchored(inp.IDEMPOTENCY_KEY_PATTERN)}}
_TOTP = {"name": "X-TOTP", "in": "header", "required": True,
         "description": "current TOTP code of the admin secret; each code is accepted once",
         "schema": {"type": "string", "minLength": 6, "maxLength": 6,
                    "pattern": _anchored(inp.TOTP_PATTERN)}}
_LIMIT = {"name": "limit", "in": "query", "required": False,
          "schema": {"type": "integer", "minimum": 1, "maximum": inp.LIMIT_MAX,
                     "default": inp.LIMIT_DEFAULT}}
_TIME = {"type": "string", "format": "date-time"}
_NULLABLE_STRING = {"type": ["string", "null"]}

_SCHEMAS: dict[str, Any] = {
    "Error": {"type": "object", "required": ["error"], "properties": {"error": {
        "type": "object", "required": ["code", "message", "field"], "properties": {
            "code": {"type": "string"}, "message": {"type": "string"},
            "field": _NULLABLE_STRING}}}},
    "Holder": {
        "type": "object", "description": "account holder details, encrypted at rest",
        "maxProperties": inp.HOLDER_MAX_FIELDS,
        "propertyNames": {"pattern": _anchored(inp.HOLDER_NAME_PATTERN)},
        "additionalProperties": {"type": "string", "maxLength": inp.HOLDER_VALUE_MAX,
                                 "pattern": "^[^\\u0000-\\u001f\\u007f-\\u009f"
                                            "\\u2028\\u2029]*$"}},
    "NewAccount": {"type": "object", "required": ["currency"], "additionalProperties": False,
                   "properties": {"currency": _CURRENCY,
                                  "non_negative": {"type": "boolean", "default": True},
                                  "holder": {"anyOf": [_ref("Holder"), {"type": "null"}]}}},
    "Account": {"type": "object", "required": ["id", "merchant_id", "currency", "balance"],
                "properties": {
                    "id": {"type": "string"}, "merchant_id": {"type": "string"},
                    "currency": {"type": "string"}, "kind": {"type": "string"},
                    "non_negative": {"type": "boolean"}, "balance": {"type": "integer"},
                    "holder": {"type": ["object", "null"]}, "created_at": _TIME}},
    "NewTransfer": {
        "type": "object", "additionalProperties": False,
        "required": ["from_account", "to_account", "amount", "currency"],
        "description": "both accounts must belong to the calling merchant",
        "properties": {
            "from_account": _ACCOUNT_ID, "to_account": _ACCOUNT_ID,
            "amount": {"type": "integer", "minimum": 1, "maximum": _MAX_AMOUNT,
                       "description": "minor units"},
            "currency": _CURRENCY}},
    "Transfer": {"type": "object", "required": ["id", "amount", "currency", "status"],
                 "properties": {
                     "id": {"type": "string"}, "merchant_id": {"type": "string"},
                     "idempotency_key": _NULLABLE_STRING, "from_account": {"type": "string"},
                     "to_account": {"type": "string"}, "amount": {"type": "integer"},
                     "currency": {"type": "string"},
                     "status": {"type": "string", "enum": ["posted", "review"]},
                     "created_at": _TIME}},
    "Statement": {"type": "object", "required": ["account_id", "balance", "entries", "source"],
                  "properties": {
                      "account_id": {"type": "string"}, "currency": {"type": "string"},
                      "balance": {"type": "integer"},
                      "projected_balance": {"type": ["integer", "null"]},
                      "source": {"type": "string", "enum": ["primary", "replica"]},
                      "entries": {"type": "array", "items": {"type": "object", "properties": {
                          "id": {"type": "integer"}, "transfer_id": {"type": "string"},
                          "amount": {"type": "integer"}, "created_at": _TIME}}}}},
    "AuditVerification": {"type": "object", "required": ["intact", "rows", "problems"],
                          "properties": {"intact": {"type": "boolean"},
                                         "rows": {"type": "integer"},
                                         "problems": {"type": "array"}}},
    "ReviewQueue": {"type": "object", "required": ["transfers"],
                    "properties": {"transfers": {"type": "array"}}},
    "Readiness": {"type": "object", "required": ["ready", "checks"],
                  "properties": {"ready": {"type": "boolean"}, "checks": {"type": "object"}}},
}

_BODY_ERRORS = ("400", "401", "413", "415", "422", "503")
_READ_ERRORS = ("401", "404", "503")
_ADMIN_ERRORS = ("401", "429", "503")
_PUBLIC: dict[str, Any] = {"security": []}

OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "Faultline payments API", "version": "1.1.0",
             "description": "Errors everywhere are {\"error\": {\"code\", \"message\", "
                            "\"field\"}}. A merchant sees and moves money only between its "
                            "own accounts; another merchant's id is answered as unknown."},
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "schemas": _SCHEMAS,
    },
    "security": [{"bearer": []}],
    "paths": {
        "/v1/accounts": {"post": _op("openAccount", "Open an account", "201", "Account",
                                     "NewAccount", errors=_BODY_ERRORS,
                                     links=("getAccount", "getStatement"))},
        "/v1/accounts/{id}": {"get": _op("getAccount", "Read an account", "200", "Account",
                                         params=[_id_param("account")], errors=_READ_ERRORS)},
        "/v1/accounts/{id}/statement": {"get": _op(
            "getStatement", "Statement (served by the read replica when it is healthy)",
            "200", "Statement", params=[_id_param("account"), _LIMIT],
            errors=(*_READ_ERRORS, "422"))},
        "/v1/transfers": {"post": _op(
            "createTransfer", "Move money between two of the merchant's accounts, exactly"
            " once per Idempotency-Key", "201", "Transfer", "NewTransfer", params=[_IDEM],
            errors=(*_BODY_ERRORS, "402", "404", "409"), links=("getTransfer",))},
        "/v1/transfers/{id}": {"get": _op("getTransfer", "Read a transfer", "200", "Transfer",
                                          params=[_id_param("transfer")],
                                          errors=_READ_ERRORS)},
        "/v1/admin/audit/verify": {"get": _op(
            "verifyAudit", "Verify the audit hash chain (admin + TOTP)", "200",
            "AuditVerification", params=[_TOTP], errors=_ADMIN_ERRORS)},
        "/v1/admin/transfers/review": {"get": _op(
            "reviewQueue", "Transfers flagged for review (admin + TOTP)", "200", "ReviewQueue",
            params=[_TOTP], errors=_ADMIN_ERRORS)},
        "/healthz": {"get": {**_PUBLIC, "summary": "process alive",
                             "responses": {"200": {"description": "ok"}}}},
        "/readyz": {"get": {**_PUBLIC, "summary": "database and redis reachable",
                            "responses": {
                                "200": {"description": "ready", "content": {
                                    "application/json": {"schema": _ref("Readiness")}}},
                                "503": {"description": "not ready", "content": {
                                    "application/json": {"schema": _ref("Readiness")}}}}}},
        "/metrics": {"get": {**_PUBLIC, "summary": "Prometheus metrics",
                             "responses": {"200": {"description": "ok", "content": {
                                 "text/plain": {"schema": {"type": "string"}}}}}}},
        "/openapi.json": {"get": {**_PUBLIC, "summary": "this document",
                                  "responses": {"200": {"description": "ok", "content": {
                                      "application/json": {"schema": {"type": "object"}}}}}}},
    },
}
