"""The wallet Django app (label ``wallet``: tables ``wallet_*``)."""

from __future__ import annotations

from django.apps import AppConfig

__all__ = ["WalletConfig"]


class WalletConfig(AppConfig):
    """Clients, wallets, payments and idempotency records."""

    name = "wallet.service"
    label = "wallet"
    default_auto_field = "django.db.models.BigAutoField"
