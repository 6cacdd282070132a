"""A small synchronous client for the Toxiproxy HTTP API (stdlib only).

Works against ``faultline proxy serve`` and against a real Toxiproxy server alike;
``TOXIPROXY_URL`` selects the server when no URL is given::

    from faultline.proxy.client import ProxyClient, ProxyAPIError

    c = ProxyClient()  # $TOXIPROXY_URL or http://127.0.0.1:8474
    p = c.create_proxy("api_postgres", listen="127.0.0.1:0", upstream="127.0.0.1:5432")
    c.add_toxic("api_postgres", type="latency", attributes={"latency": 100})
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote

__all__ = ["DEFAULT_URL", "ProxyAPIError", "ProxyClient"]

DEFAULT_URL = "http://127.0.0.1:8474"


class ProxyAPIError(Exception):
    """The server answered with an error status (or could not be reached: status 0)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}" if status else message)
        self.status = status
        self.message = message


class ProxyClient:
    """Sync client of one Toxiproxy-compatible server."""

    def __init__(self, url: str | None = None, *, timeout: float = 10.0) -> None:
        base = url or os.environ.get("TOXIPROXY_URL") or DEFAULT_URL
        if "://" not in base:
            base = "http://" + base
        self.url = base.rstrip("/")
        self.timeout = timeout

    # -- plumbing ----------------------------------------------------------------------
    def _request(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("User-Agent", "faultline-proxy-client")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            text = exc.read().decode("utf-8", "replace")
            message = text.strip()
            try:
                parsed = json.loads(text)
                if isinstance(parsed, dict) and "error" in parsed:
                    message = str(parsed["error"])
            except ValueError:
                pass
            raise ProxyAPIError(exc.code, message or exc.reason) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ProxyAPIError(0, f"cannot reach {self.url}: {reason}") from None
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return raw.decode("utf-8", "replace")

    # -- server --------------------------------------------------------------------------
    def version(self) -> str:
        """The server's version string."""
        answer = self._request("GET", "/version")
        if isinstance(answer, dict):
            return str(answer.get("version", ""))
        return str(answer).strip()

    def reset(self) -> None:
        """Enable every proxy and remove every toxic."""
        self._request("POST", "/reset")

    def populate(self, proxies: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Create or replace proxies in one go (all validated before any is created)."""
        answer = self._request("POST", "/populate", [dict(p) for p in proxies])
        return list(answer.get("proxies") or [])

    def events(self, since: int = 0) -> tuple[list[dict[str, Any]], int]:
        """Faultline only: events since ``since`` and the ``since`` for the next call."""
        answer = self._request("GET", f"/events?since={int(since)}")
        return list(answer["events"]), int(answer["next"])

    # -- proxies ------------------------------------------------------------------------
    def proxies(self) -> dict[str, dict[str, Any]]:
        """Every proxy, keyed by name."""
        return dict(self._request("GET", "/proxies"))

    def create_proxy(
        self, name: str, *, listen: str = "127.0.0.1:0", upstream: str, enabled: bool = True
    ) -> dict[str, Any]:
        """Create a proxy; the returned ``listen`` is the real address (port 0 resolved)."""
        body = {"name": name, "listen": listen, "upstream": upstream, "enabled": enabled}
        return dict(self._request("POST", "/proxies", body))

    def get_proxy(self, name: str) -> dict[str, Any]:
        """One proxy."""
        return dict(self._request("GET", f"/proxies/{quote(name, safe='')}"))

    def update_proxy(self, name: str, **fields: Any) -> dict[str, Any]:
        """Change ``listen``, ``upstream`` or ``enabled`` (POST: older Toxiproxy lacks PATCH)."""
        return dict(self._request("POST", f"/proxies/{quote(name, safe='')}", fields))

    def enable_proxy(self, name: str) -> dict[str, Any]:
        """Listen again."""
        return self.update_proxy(name, enabled=True)

    def disable_proxy(self, name: str) -> dict[str, Any]:
        """Stop listening and close every connection."""
        return self.update_proxy(name, enabled=False)

    def delete_proxy(self, name: str) -> None:
        """Delete a proxy."""
        self._request("DELETE", f"/proxies/{quote(name, safe='')}")

    # -- toxics ---------------------------------------------------------------------------
    def toxics(self, proxy: str) -> list[dict[str, Any]]:
        """The toxics of a proxy."""
        return list(self._request("GET", f"/proxies/{quote(proxy, safe='')}/toxics"))

    def get_toxic(self, proxy: str, name: str) -> dict[str, Any]:
        """One toxic."""
        path = f"/proxies/{quote(proxy, safe='')}/toxics/{quote(name, safe='')}"
        return dict(self._request("GET", path))

    def add_toxic(
        self,
        proxy: str,
        *,
        type: str,
        stream: str = "downstream",
        toxicity: float = 1.0,
        name: str | None = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Add a toxic (name defaults to ``<type>_<stream>``)."""
        body: dict[str, Any] = {
            "type": type,
            "stream": stream,
            "toxicity": toxicity,
            "attributes": dict(attributes or {}),
        }
        if name is not None:
            body["name"] = name
        return dict(self._request("POST", f"/proxies/{quote(proxy, safe='')}/toxics", body))

    def update_toxic(
        self,
        proxy: str,
        name: str,
        *,
        toxicity: float | None = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Change a toxic's toxicity and/or attributes (merged over the current ones)."""
        body: dict[str, Any] = {}
        if toxicity is not None:
            body["toxicity"] = toxicity
        if attributes is not None:
            body["attributes"] = dict(attributes)
        path = f"/proxies/{quote(proxy, safe='')}/toxics/{quote(name, safe='')}"
        return dict(self._request("POST", path, body))

    def remove_toxic(self, proxy: str, name: str) -> None:
        """Remove a toxic (what a ``timeout`` held is closed)."""
        self._request("DELETE", f"/proxies/{quote(proxy, safe='')}/toxics/{quote(name, safe='')}")
