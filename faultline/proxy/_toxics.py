"""Every toxic type the server knows, by name.

Toxiproxy's own (``latency``, ``bandwidth``, ``slow_close``, ``timeout``, ``reset_peer``,
``slicer``, ``limit_data``) and Faultline's (``lost_ack``, ``connect_delay``,
``http_error``, ``half_close``, ``stall``). The model they share is in ``_toxic``.
"""

from __future__ import annotations

from faultline.proxy._extra_toxics import EXTRA_KINDS
from faultline.proxy._http_toxic import HTTP_ERROR
from faultline.proxy._toxic import ToxicKind
from faultline.proxy._toxiproxy_toxics import TOXIPROXY_KINDS

__all__ = ["KINDS"]

KINDS: dict[str, ToxicKind] = {
    kind.name: kind for kind in (*TOXIPROXY_KINDS, *EXTRA_KINDS, HTTP_ERROR)
}
