"""``python -m wallet.service.seed``: clients, their wallets, and money to start with.

Creates the platform's funding wallet (a hordak *asset* account: the bank account that
customers' money arrives in), ``--clients`` clients each with ``--wallets`` customer
wallets (hordak *liability* accounts: what the platform owes each holder), and tops
every wallet up with ``--balance`` euros from the funding wallet. Prints one JSON
object: ``{"currency", "funded_minor", "funding_wallet", "clients": [{"id", "token",
"wallets": [ids]}]}``. Run it once on a freshly migrated database.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
from decimal import Decimal
from typing import Any

__all__ = ["main", "seed"]


def seed(clients: int, wallets: int, balance_minor: int) -> dict[str, Any]:
    """Create everything in one go; returns what the clients of the API need."""
    from django.db import transaction
    from hordak.models import Account, AccountType

    from . import ledger
    from .models import Client, Wallet

    with transaction.atomic():
        platform = Client.objects.create(name="platform", api_token=secrets.token_hex(24))
        bank = Account.objects.create(name="Safeguarding bank account",
                                      type=AccountType.asset, currencies=["EUR"])
        funding = Wallet.objects.create(client=platform, account=bank,
                                        kind=Wallet.Kind.FUNDING, allow_negative=True)
        out: dict[str, Any] = {"currency": "EUR", "funding_wallet": str(funding.id),
                               "funded_minor": 0, "clients": []}
        for c in range(clients):
            client = Client.objects.create(name=f"client-{c + 1}",
                                           api_token=secrets.token_hex(24))
            ids = []
            for w in range(wallets):
                account = Account.objects.create(name=f"client-{c + 1} wallet {w + 1}",
                                                 type=AccountType.liability,
                                                 currencies=["EUR"])
                wallet = Wallet.objects.create(client=client, account=account)
                ledger.topup(client, funding, wallet, balance_minor)
                out["funded_minor"] += balance_minor
                ids.append(str(wallet.id))
            out["clients"].append({"id": str(client.id), "token": client.api_token,
                                   "wallets": ids})
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m wallet.service.seed",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--wallets", type=int, default=5, help="per client")
    parser.add_argument("--balance", default="500.00", help="euros in each wallet")
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "wallet.service.settings")
    import django

    django.setup()
    minor = int(Decimal(args.balance) * 100)
    print(json.dumps(seed(args.clients, args.wallets, minor)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
