"""``python -m wallet.service``: serve the wallet API with gunicorn on ``WALLET_PORT``."""

from __future__ import annotations

import os
import sys

from gunicorn.app.wsgiapp import run

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "wallet.service.settings")
    sys.argv = ["gunicorn", "-c", "python:wallet.service.gunicorn_conf",
                "wallet.service.wsgi:application"]
    sys.exit(run())
