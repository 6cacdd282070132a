"""Django settings of the wallet service, all from the environment.

=========================  ================================================================
``WALLET_DATABASE_URL``    PostgreSQL, ``postgresql://user:pass@host:port/db`` (required)
``WALLET_BUGS``            comma list of deliberate bugs (``bugs.py``); empty = correct
``WALLET_SECRET_KEY``      Django's secret key (nothing here signs anything: random if unset)
``WALLET_APP_NAME``        this process's PostgreSQL ``application_name`` (``wallet-api``)
=========================  ================================================================

Timeouts are short on purpose: a wallet request that cannot reach its database fails
fast (503) instead of holding a worker thread, and a transaction whose client vanished
is ended by PostgreSQL itself.
"""

from __future__ import annotations

import os
import secrets

import dj_database_url

from wallet import bugs

SECRET_KEY = os.environ.get("WALLET_SECRET_KEY") or secrets.token_urlsafe(32)
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "wallet.service.urls"
WSGI_APPLICATION = "wallet.service.wsgi.application"
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "mptt",
    "djmoney",
    "hordak",
    "wallet.service.apps.WalletConfig",
]
MIDDLEWARE = ["wallet.service.views.JsonErrors"]

DATABASES = {
    "default": {
        **dj_database_url.parse(os.environ.get(
            "WALLET_DATABASE_URL", "postgresql://wallet:wallet@127.0.0.1:5432/wallet")),
        # one connection per worker thread, kept between requests and checked before
        # reuse (a connection cut by a fault is replaced, not handed to a request)
        "CONN_MAX_AGE": 60,
        "CONN_HEALTH_CHECKS": True,
        "OPTIONS": {
            # which process a session belongs to (the drill's settle probe reads it)
            "application_name": os.environ.get("WALLET_APP_NAME", "wallet-api"),
            "connect_timeout": 3,
            "options": ("-c statement_timeout=5000 -c lock_timeout=4000 "
                        "-c idle_in_transaction_session_timeout=10000"),
        },
    },
}

# the books are in euros, two decimal places (hordak's defaults, said out loud)
DEFAULT_CURRENCY = "EUR"
CURRENCIES = ["EUR"]
HORDAK_DECIMAL_PLACES = 2
HORDAK_MAX_DIGITS = 13

#: the deliberate bugs of this process (``WALLET_BUGS``)
WALLET_BUGS = bugs.active()

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"django": {"handlers": ["console"], "level": "WARNING"},
                "wallet": {"handlers": ["console"], "level": "INFO"}},
}
