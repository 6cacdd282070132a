"""Network faults: toxics on the stack's hops, through the fault proxy's API.

Every toxic the drill adds is named ``faultline-<fault index>``, so heal finds them. On
stop the toxic is removed together with its final counters (``?effect=1``, an extension
of the Toxiproxy API): what it was exposed to (``seen``: connections, exchanges, bytes)
and what it changed (``effect``: replies dropped, bytes delayed, connections reset...).
``down`` disables the hop's proxy; its effect is what disabling cut. A real Toxiproxy
reports no counters: the effect is then unknown, which the verdict says.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from faultline.history import NemesisLog

__all__ = ["TOXIC_PREFIX", "NetworkNemesis", "heal_proxy"]

#: every toxic the drill adds is named ``faultline-<fault index>`` so heal finds them
TOXIC_PREFIX = "faultline-"


class NetworkNemesis:
    """Inject and heal toxics. ``client`` is a :class:`faultline.proxy.client.ProxyClient`;
    ``hops`` maps the scenario's hop names to the proxy's names (``StackInfo.hops``);
    ``log`` gets the nemesis lines."""

    def __init__(self, client: Any, hops: Mapping[str, str], log: NemesisLog) -> None:
        self.client = client
        self.hops = dict(hops)
        self.log = log
        self._active: dict[int, Any] = {}

    def proxy(self, fault: Any) -> str:
        try:
            return self.hops[fault.hop]
        except KeyError:
            raise ValueError(f"this stack has no proxy on hop {fault.hop!r} (it has: "
                             f"{', '.join(self.hops) or 'none'})") from None

    def _value(self, index: int, fault: Any) -> dict[str, Any]:
        return {"index": index, "name": fault.label, "fault": "toxic", "toxic": fault.toxic,
                "hop": fault.hop, "proxy": self.hops.get(fault.hop), "stream": fault.stream,
                "toxicity": fault.toxicity, "scope": fault.scope,
                "attributes": dict(fault.attributes)}

    def start(self, index: int, fault: Any) -> None:
        """Add the fault's toxic (or disable the hop's proxy for ``down``)."""
        proxy = self.proxy(fault)
        if fault.toxic == "down":
            self.client.update_proxy(proxy, enabled=False)
        else:
            self.client.add_toxic(proxy, type=fault.toxic, stream=fault.stream,
                                  toxicity=fault.toxicity, name=f"{TOXIC_PREFIX}{index}",
                                  attributes=dict(fault.attributes), scope=fault.scope)
        self._active[index] = fault
        self.log.record("start", self._value(index, fault))

    def stop(self, index: int) -> None:
        """Remove the fault's toxic (or enable the proxy again), recording its counters."""
        fault = self._active.pop(index, None)
        if fault is None:
            return
        proxy = self.proxy(fault)
        counters: Mapping[str, Any] | None = None
        try:
            if fault.toxic == "down":
                self.client.update_proxy(proxy, enabled=True)
                counters = self.client.proxy_effect(proxy)
            else:
                counters = self.client.remove_toxic(proxy, f"{TOXIC_PREFIX}{index}", effect=True)
        finally:
            value = self._value(index, fault)
            if counters is not None:
                value["effect"] = dict(counters.get("effect") or {})
                if counters.get("seen") is not None:
                    value["seen"] = dict(counters["seen"])
            self.log.record("stop", value)

    @property
    def active(self) -> list[str]:
        """Labels of the faults in force."""
        return [f.label for f in self._active.values()]

    def heal_all(self) -> list[str]:
        """Remove every toxic from every proxy and enable every proxy: the stack's network
        is whole again, whoever added what. Returns what was undone."""
        undone: list[str] = []
        for index in list(self._active):
            with contextlib.suppress(Exception):
                self.stop(index)
                undone.append(f"fault {index}")
        undone += heal_proxy(self.client)
        return undone


def heal_proxy(client: Any) -> list[str]:
    """Every toxic removed and every proxy enabled on the proxy server behind ``client``."""
    undone: list[str] = []
    for name, proxy in client.proxies().items():
        for toxic in proxy.get("toxics") or []:
            with contextlib.suppress(Exception):
                client.remove_toxic(name, toxic["name"])
                undone.append(f"{name}/{toxic['name']}")
        if not proxy.get("enabled", True):
            with contextlib.suppress(Exception):
                client.update_proxy(name, enabled=True)
                undone.append(f"{name} enabled")
    return undone
