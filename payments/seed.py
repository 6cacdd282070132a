"""Seed merchants, funded accounts and admin credentials; print them as JSON (contracts §4).

``python -m payments.seed --merchants 2 --accounts 10 --balance 100000 --currency EUR``

Money enters only through transfers out of the platform's ``issuance`` account (the one
account kind allowed to go negative), so conservation holds from the first row.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid
from typing import Any

import asyncpg
import orjson
import pyotp

from payments import audit, ledger
from payments._config import Settings, load_settings
from payments._crypto import Sealer, hash_api_key, new_api_key

__all__ = ["PLATFORM_MERCHANT", "issuance_account_id", "main", "seed"]

PLATFORM_MERCHANT = "m_platform"


def issuance_account_id(currency: str) -> str:
    """The platform's issuance account for ``currency``."""
    return f"acc_issuance_{currency.lower()}"


async def _open_account(conn: Any, sealer: Sealer, merchant_id: str, currency: str,
                        holder: dict[str, Any] | None) -> str:
    account_id = "acc_" + uuid.uuid4().hex
    sealed = sealer.seal(orjson.dumps(holder), account_id.encode()) if holder else None
    await conn.execute(
        "INSERT INTO accounts (id, merchant_id, currency, kind, non_negative, holder_enc)"
        " VALUES ($1, $2, $3, 'customer', true, $4)", account_id, merchant_id, currency, sealed)
    await audit.append(conn, "account", account_id, "opened",
                       {"account_id": account_id, "merchant_id": merchant_id,
                        "currency": currency, "non_negative": True})
    return account_id


async def seed(settings: Settings, *, merchants: int, accounts: int, balance: int,
               currency: str) -> dict[str, Any]:
    """Create the seed data; return the contracts §4 JSON object."""
    sealer = Sealer(settings.encryption_key)
    conn = await asyncpg.connect(settings.database_url)
    try:
        async with conn.transaction():
            await conn.execute(
                "INSERT INTO merchants (id, name) VALUES ($1, 'platform') ON CONFLICT DO NOTHING",
                PLATFORM_MERCHANT)
            issuance = issuance_account_id(currency)
            created = await conn.fetchval(
                "INSERT INTO accounts (id, merchant_id, currency, kind, non_negative)"
                " VALUES ($1, $2, $3, 'issuance', false) ON CONFLICT DO NOTHING RETURNING true",
                issuance, PLATFORM_MERCHANT, currency)
            if created:
                await audit.append(conn, "account", issuance, "opened",
                                   {"account_id": issuance, "merchant_id": PLATFORM_MERCHANT,
                                    "currency": currency, "non_negative": False})
            admin_key = new_api_key("admin")
            totp_secret = settings.admin_totp_secret or pyotp.random_base32()
            await conn.execute(
                "INSERT INTO admin_credentials (id, api_key_hash, totp_secret_enc)"
                " VALUES (1, $1, $2) ON CONFLICT (id) DO UPDATE SET"
                " api_key_hash = EXCLUDED.api_key_hash, totp_secret_enc = EXCLUDED.totp_secret_enc",
                hash_api_key(admin_key), sealer.seal(totp_secret.encode(), b"admin-totp"))
            out: list[dict[str, Any]] = []
            for m in range(merchants):
                merchant_id = "m_" + uuid.uuid4().hex[:16]
                api_key = new_api_key("sk")
                await conn.execute(
                    "INSERT INTO merchants (id, name, api_key_hash) VALUES ($1, $2, $3)",
                    merchant_id, f"merchant {m + 1}", hash_api_key(api_key))
                ids = []
                for i in range(accounts):
                    account_id = await _open_account(
                        conn, sealer, merchant_id, currency,
                        {"name": f"Holder {m + 1}.{i + 1}", "iban": f"XX00FAULT{m:04d}{i:06d}"})
                    if balance > 0:
                        t = ledger.Transfer.new(merchant_id=PLATFORM_MERCHANT,
                                                from_account=issuance, to_account=account_id,
                                                amount=balance, currency=currency,
                                                idempotency_key=None)
                        await ledger.post_transfer(conn, t, completion=None)
                    ids.append(account_id)
                out.append({"id": merchant_id, "api_key": api_key, "accounts": ids})
    finally:
        await conn.close()
    return {"merchants": out, "admin_api_key": admin_key, "admin_totp_secret": totp_secret,
            "currency": currency, "issuance_account": issuance}


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m payments.seed``."""
    parser = argparse.ArgumentParser(prog="python -m payments.seed", description=__doc__)
    parser.add_argument("--merchants", type=int, default=2)
    parser.add_argument("--accounts", type=int, default=10)
    parser.add_argument("--balance", type=int, default=100_000)
    parser.add_argument("--currency", default="EUR")
    args = parser.parse_args(argv)
    if len(args.currency) != 3 or not args.currency.isalpha():
        parser.error("--currency must be a 3-letter code")
    result = asyncio.run(seed(load_settings(), merchants=args.merchants, accounts=args.accounts,
                              balance=args.balance, currency=args.currency.upper()))
    sys.stdout.write(orjson.dumps(result).decode() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
