"""A wallet service drilled by Faultline through its own system profile.

Two halves that share nothing but an HTTP API and a database schema:

- ``wallet.service``: the system under test, a Django service over django-hordak's
  double-entry ledger on PostgreSQL, served by gunicorn. It knows nothing of Faultline.
- ``wallet.drill``: its Faultline profile (``wallet.drill:PROFILE``): how it runs
  locally, its hops and services, its Jepsen client, its snapshot and settle probe.

Importable with ``PYTHONPATH=examples`` (see ``examples/wallet/README.md``).
"""
