"""A Toxiproxy-compatible fault proxy: HTTP API, TCP proxies, toxics, reproducible faults.

``faultline proxy serve`` (or :class:`ProxyServer` in-process) speaks Toxiproxy 2.x's
HTTP API; :class:`ProxyClient` drives it or a real Toxiproxy (``TOXIPROXY_URL``).
Beyond Toxiproxy: a ``--seed`` that makes jitter, toxicity rolls and slicing
reproducible, the ``lost_ack``, ``connect_delay`` and ``http_error`` toxics, and a
structured event for every fault applied or removed.
"""

from faultline.proxy._api import TOXIPROXY_VERSION
from faultline.proxy._config import ConfigError, load_config
from faultline.proxy._events import EventLog
from faultline.proxy._server import DEFAULT_HOST, DEFAULT_PORT, ProxyServer
from faultline.proxy._toxics import KINDS as _KINDS
from faultline.proxy.client import ProxyAPIError, ProxyClient

TOXIC_TYPES: tuple[str, ...] = tuple(_KINDS)
"""Every toxic type the server knows."""

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "TOXIC_TYPES",
    "TOXIPROXY_VERSION",
    "ConfigError",
    "EventLog",
    "ProxyAPIError",
    "ProxyClient",
    "ProxyServer",
    "load_config",
]
