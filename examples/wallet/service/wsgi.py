"""The WSGI application gunicorn serves (``python -m wallet.service``)."""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

__all__ = ["application"]

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "wallet.service.settings")
application = get_wsgi_application()
