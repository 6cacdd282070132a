"""The wallet service: customers' e-money wallets, payments between them.

Django + django-hordak (the books: accounts, transactions, legs; PostgreSQL refuses a
transaction whose legs do not balance) + a per-wallet balance row (what is locked and
checked before money leaves a wallet). Served by gunicorn; configured from ``WALLET_*``
environment variables (``settings.py``); deliberate bugs from ``WALLET_BUGS``
(``bugs.py``).
"""
