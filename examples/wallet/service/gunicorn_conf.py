"""gunicorn's settings for the wallet (``gunicorn -c python:wallet.service.gunicorn_conf``).

Two worker processes of four threads each: payments from one wallet really do run
concurrently, which is what a funds check has to survive. A stop is quick (the drill
stops and restarts the service), and the port comes from ``WALLET_PORT``.
"""

from __future__ import annotations

import os

bind = f"127.0.0.1:{os.environ.get('WALLET_PORT', '8000')}"
workers = int(os.environ.get("WALLET_WORKERS", "2"))
worker_class = "gthread"
threads = int(os.environ.get("WALLET_THREADS", "4"))
timeout = 30
graceful_timeout = 3
keepalive = 5
accesslog = None
errorlog = "-"
loglevel = "warning"
proc_name = "wallet"
