"""The client's backend: it receives the wallet's ``payment.completed`` webhooks.

A separate service with its own database (``merchant``): it verifies each webhook's
signature, records every delivery, applies each event once (deduplicated by
``event_id``) to its own view of the wallets' balances, and answers 200 only after
that has committed. Standard library HTTP server and psycopg; nothing of Django.

``python -m wallet.merchant migrate`` creates its tables; ``python -m wallet.merchant``
serves ``POST /webhooks``, ``GET /healthz`` and ``GET /readyz`` on ``WALLET_PORT``.
"""
