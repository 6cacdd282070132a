"""A Toxiproxy-compatible fault proxy: HTTP API, TCP proxies, toxics, reproducible faults.

``faultline proxy serve`` (or :class:`ProxyServer` in-process) speaks Toxiproxy 2.x's
HTTP API; :class:`ProxyClient` drives it or a real Toxiproxy (``TOXIPROXY_URL``).
Beyond Toxiproxy: every toxic counts what it saw and what it changed (``seen`` /
``effect``), toxicity can be rolled per request/reply turn (``scope: "exchange"``), one
seed (``--seed``, ``POST /seed``) replays every random decision, the ``lost_ack``,
``connect_delay``, ``http_error``, ``half_close`` and ``stall`` toxics cover the fates of a
request Toxiproxy cannot express, a structured event records every fault applied,
fired or removed, and the API refuses loops, non-loopback listeners (unless allowed)
and malformed input. See docs/proxy.md.
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
