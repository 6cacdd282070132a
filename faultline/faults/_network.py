"""Network faults: toxics on the hops of the stack, through the fault proxy's API."""

from __future__ import annotations

import contextlib
from typing import Any

from ._log import NemesisLog

__all__ = ["TOXIC_PREFIX", "NetworkNemesis"]

#: every toxic the drill adds is named ``faultline-<fault index>`` so heal finds them
TOXIC_PREFIX = "faultline-"


class NetworkNemesis:
    """Inject and heal toxics. ``client`` is a :class:`faultline.proxy.client.ProxyClient`
    (or anything with its methods); ``log`` gets the nemesis lines."""

    def __init__(self, client: Any, log: NemesisLog) -> None:
        self.client = client
        self.log = log
        self._active: dict[int, Any] = {}

    def _value(self, index: int, fault: Any) -> dict[str, Any]:
        return {"index": index, "name": fault.label, "fault": "toxic", "toxic": fault.toxic,
                "hop": fault.hop, "proxy": fault.proxy, "stream": fault.stream,
                "toxicity": fault.toxicity, "attributes": dict(fault.attributes)}

    def start(self, index: int, fault: Any) -> None:
        """Add the fault's toxic (or disable the hop's proxy for ``down``)."""
        if fault.toxic == "down":
            self.client.update_proxy(fault.proxy, enabled=False)
        else:
            self.client.add_toxic(fault.proxy, type=fault.toxic, stream=fault.stream,
                                  toxicity=fault.toxicity, name=f"{TOXIC_PREFIX}{index}",
                                  attributes=dict(fault.attributes))
        self._active[index] = fault
        self.log.record("start", self._value(index, fault))

    def stop(self, index: int) -> None:
        """Remove the fault's toxic (or enable the proxy again)."""
        fault = self._active.pop(index, None)
        if fault is None:
            return
        try:
            if fault.toxic == "down":
                self.client.update_proxy(fault.proxy, enabled=True)
            else:
                self.client.remove_toxic(fault.proxy, f"{TOXIC_PREFIX}{index}")
        finally:
            self.log.record("stop", self._value(index, fault))

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
