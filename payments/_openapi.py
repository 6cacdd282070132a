"""The api's OpenAPI 3.1 document (hand-written: no schema framework on the hot path)."""

from __future__ import annotations

from typing import Any

__all__ = ["OPENAPI"]

_ERROR = {"$ref": "#/components/schemas/Error"}
_ERR_RESP = {"description": "error", "content": {"application/json": {"schema": _ERROR}}}


def _op(summary: str, ok: str, schema: str | None = None, body: str | None = None,
        params: list[dict[str, Any]] | None = None, errors: tuple[str, ...] = ()) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "responses": {ok: {"description": "ok"}}}
    if schema:
        op["responses"][ok]["content"] = {
            "application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}
    for code in errors:
        op["responses"][code] = _ERR_RESP
    if body:
        op["requestBody"] = {"required": True, "content": {
            "application/json": {"schema": {"$ref": f"#/components/schemas/{body}"}}}}
    if params:
        op["parameters"] = params
    return op


_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
_IDEM = {"name": "Idempotency-Key", "in": "header", "required": True,
         "schema": {"type": "string", "minLength": 1, "maxLength": 255}}
_TOTP = {"name": "X-TOTP", "in": "header", "required": True, "schema": {"type": "string"}}

OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "Faultline payments API", "version": "1.0.0"},
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "schemas": {
            "Error": {"type": "object", "properties": {"error": {"type": "object", "properties": {
                "code": {"type": "string"}, "message": {"type": "string"},
                "field": {"type": ["string", "null"]}}}}},
            "NewAccount": {"type": "object", "required": ["currency"], "properties": {
                "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
                "non_negative": {"type": "boolean", "default": True},
                "holder": {"type": "object", "description": "encrypted at rest"}}},
            "Account": {"type": "object", "properties": {
                "id": {"type": "string"}, "merchant_id": {"type": "string"},
                "currency": {"type": "string"}, "kind": {"type": "string"},
                "non_negative": {"type": "boolean"}, "balance": {"type": "integer"},
                "holder": {"type": ["object", "null"]}}},
            "NewTransfer": {"type": "object",
                            "required": ["from_account", "to_account", "amount", "currency"],
                            "properties": {
                                "from_account": {"type": "string"}, "to_account": {"type": "string"},
                                "amount": {"type": "integer", "minimum": 1,
                                           "description": "minor units"},
                                "currency": {"type": "string", "pattern": "^[A-Z]{3}$"}}},
            "Transfer": {"type": "object", "properties": {
                "id": {"type": "string"}, "merchant_id": {"type": "string"},
                "idempotency_key": {"type": "string"}, "from_account": {"type": "string"},
                "to_account": {"type": "string"}, "amount": {"type": "integer"},
                "currency": {"type": "string"},
                "status": {"type": "string", "enum": ["posted", "review"]},
                "created_at": {"type": "string", "format": "date-time"}}},
            "Statement": {"type": "object"},
        },
    },
    "security": [{"bearer": []}],
    "paths": {
        "/v1/accounts": {"post": _op("Open an account", "201", "Account", "NewAccount",
                                     errors=("400", "401", "422"))},
        "/v1/accounts/{id}": {"get": _op("Read an account", "200", "Account", params=[_ID],
                                         errors=("401", "404"))},
        "/v1/accounts/{id}/statement": {"get": _op(
            "Statement (served by the read replica when it is healthy)", "200", "Statement",
            params=[_ID], errors=("401", "404"))},
        "/v1/transfers": {"post": _op(
            "Move money between two accounts, exactly once per Idempotency-Key", "201",
            "Transfer", "NewTransfer", params=[_IDEM],
            errors=("400", "401", "402", "403", "404", "409", "422", "503"))},
        "/v1/transfers/{id}": {"get": _op("Read a transfer", "200", "Transfer", params=[_ID],
                                          errors=("401", "404"))},
        "/v1/admin/audit/verify": {"get": _op("Verify the audit hash chain (admin + TOTP)",
                                              "200", params=[_TOTP], errors=("401",))},
        "/v1/admin/transfers/review": {"get": _op("Transfers flagged for review (admin + TOTP)",
                                                  "200", params=[_TOTP], errors=("401",))},
        "/healthz": {"get": {"summary": "process alive", "security": [],
                             "responses": {"200": {"description": "ok"}}}},
        "/readyz": {"get": {"summary": "database and redis reachable", "security": [],
                            "responses": {"200": {"description": "ready"},
                                          "503": {"description": "not ready"}}}},
        "/metrics": {"get": {"summary": "Prometheus metrics", "security": [],
                             "responses": {"200": {"description": "ok"}}}},
    },
}
