"""The services' own PostgreSQL login role: only the privileges they use.

``python -m payments.migrate`` (run as a superuser or the schema owner) creates or
updates it when ``PAYMENTS_APP_ROLE`` and ``PAYMENTS_APP_PASSWORD`` are set; the api,
relay and worker then connect as it. It owns nothing, so it cannot run DDL (DROP, ALTER,
CREATE in the schema), and its grants below are the whole of what it can do: no UPDATE
or DELETE on the audit log, no writes to merchants or admin credentials, no reading
``schema_migrations``. The ledger functions run as their caller (not SECURITY DEFINER),
so these grants are also exactly what ``ledger_post`` and ``audit_append`` can touch when
the services call them - no function lends the role its owner's rights.

The password is sent only as a SCRAM-SHA-256 verifier computed here (RFC 5803 format,
what ``psql``'s ``\\password`` sends), never in clear text: a server logging statements
would otherwise log it.

Grants are re-applied from scratch on every run (revoke all, grant the list), so the list
is the truth; a migration that adds a table adds its line here, and a test checks that
every table of the schema is listed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
from typing import Any

__all__ = ["APP_GRANTS", "NO_ACCESS", "ensure_app_role", "scram_sha256_verifier"]

# table -> privileges; "UPDATE (a, b)" limits UPDATE to those columns (a SELECT ... FOR
# UPDATE needs UPDATE on one column: the row locks of the ledger and audit head).
APP_GRANTS: dict[str, str] = {
    "merchants": "SELECT",                                          # api: key lookup
    "admin_credentials": "SELECT",                                  # api: admin auth
    "admin_totp_guard": "SELECT, INSERT, UPDATE",                   # api: TOTP replay/lockout
    "accounts": "SELECT, INSERT, UPDATE (balance)",                 # api: open, ledger_post
    "transfers": "SELECT, INSERT",                                  # ledger_post, reads
    "entries": "SELECT, INSERT",                                    # ledger_post, statements
    "idempotency": "SELECT, INSERT, UPDATE, DELETE",                # claim/finish/release
    "outbox": "SELECT, INSERT, UPDATE (published_at, stream_id)",   # ledger_post, relay
    "processed_events": "SELECT, INSERT",                           # worker
    "projections": "SELECT, INSERT, UPDATE (balance)",              # worker, statements
    "audit_log": "SELECT, INSERT",                                  # append, verify
    "audit_head": "SELECT, UPDATE (seq, hash)",                     # audit_append
}
NO_ACCESS = frozenset({"schema_migrations"})
_SEQUENCES = ("entries_id_seq", "outbox_id_seq")
_ROLE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_ITERATIONS = 4096  # PostgreSQL's own default (scram_iterations)


def scram_sha256_verifier(password: str, *, salt: bytes | None = None,
                          iterations: int = _ITERATIONS) -> str:
    """``SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`` for ``password``.

    ASCII passwords only: PostgreSQL SASLprep-normalises non-ASCII ones first, which the
    standard library cannot reproduce exactly, and a mismatch would lock the role out.
    """
    if not password.isascii() or not password.isprintable():
        raise ValueError("PAYMENTS_APP_PASSWORD must be printable ASCII")
    salt = salt or os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.digest(salted, b"Client Key", "sha256")
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.digest(salted, b"Server Key", "sha256")

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode()

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def ensure_app_role(conn: Any, role: str, password: str) -> None:
    """Create or update ``role`` (login, SCRAM password, no special attributes) and set
    its privileges on the current database to exactly ``APP_GRANTS``. Idempotent."""
    if _ROLE_NAME.fullmatch(role) is None:
        raise ValueError("PAYMENTS_APP_ROLE must be 1-63 of a-z 0-9 _ (not starting with a digit)")
    if len(password) < 16:
        raise ValueError("PAYMENTS_APP_PASSWORD must be at least 16 characters")
    verifier = scram_sha256_verifier(password)  # base64, '$' and ':' only: safe to quote
    who = _ident(role)
    attributes = ("LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION"
                  " NOBYPASSRLS CONNECTION LIMIT -1")
    database = _ident(await conn.fetchval("SELECT current_database()"))
    async with conn.transaction():
        exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role)
        verb = "ALTER" if exists else "CREATE"
        await conn.execute(f"{verb} ROLE {who} WITH {attributes} PASSWORD '{verifier}'")
        # The role is in no other role (NOINHERIT and no memberships) and PUBLIC may not
        # create in the schema (PostgreSQL < 15 allowed that by default).
        await conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
        await conn.execute(f"GRANT CONNECT ON DATABASE {database} TO {who}")
        await conn.execute(f"GRANT USAGE ON SCHEMA public TO {who}")
        await conn.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {who}")
        await conn.execute(f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {who}")
        for table, privileges in APP_GRANTS.items():
            await conn.execute(f"GRANT {privileges} ON TABLE {_ident(table)} TO {who}")
        for sequence in _SEQUENCES:
            await conn.execute(f"GRANT USAGE ON SEQUENCE {_ident(sequence)} TO {who}")
