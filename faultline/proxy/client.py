"""A small synchronous client for the Toxiproxy HTTP API (stdlib only).

Works against ``faultline proxy serve`` and against a real Toxiproxy server alike;
``TOXIPROXY_URL`` selects the server when no URL is given, ``FAULTLINE_PROXY_TOKEN``
the API token (sent as ``Authorization: Bearer``) when the server wants one::

    from faultline.proxy.client import ProxyClient, ProxyAPIError

    c = ProxyClient()  # $TOXIPROXY_URL or http://127.0.0.1:8474
    p = c.create_proxy("api_postgres", listen="127.0.0.1:0", upstream="127.0.0.1:5432")
    c.set_seed(7, label="lost-ack-under-load")          # Faultline only
    c.add_toxic("api_postgres", type="lost_ack", toxicity=0.2, scope="exchange")
    c.toxic_effect("api_postgres", "lost_ack_downstream")  # {"seen": {...}, "effect": {...}}
    c.remove_toxic("api_postgres", "lost_ack_downstream", effect=True)  # final counters

Faultline's extensions answer ``None`` (or raise :class:`ProxyAPIError`, where a value is
required) when the server is a real Toxiproxy, which does not have them.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote

__all__ = ["DEFAULT_URL", "TOKEN_ENV", "ProxyAPIError", "ProxyClient"]

DEFAULT_URL = "http://127.0.0.1:8474"
TOKEN_ENV = "FAULTLINE_PROXY_TOKEN"


class ProxyAPIError(Exception):
    """The server answered with an error status (or could not be reached: status 0)."""

    def __init__(self, status: int, message: str, *, route_unknown: bool = False) -> None:
        super().__init__(f"{status}: {message}" if status else message)
        self.status = status
        self.message = message
        #: a 404 for the route itself, not for a proxy or toxic: the server lacks it
        self.route_unknown = route_unknown


class ProxyClient:
    """Sync client of one Toxiproxy-compatible server."""

    def __init__(self, url: str | None = None, *, timeout: float = 10.0,
                 token: str | None = None) -> None:
        base = url or os.environ.get("TOXIPROXY_URL") or DEFAULT_URL
        if "://" not in base:
            base = "http://" + base
        self.url = base.rstrip("/")
        self.timeout = timeout
        self.token = token if token is not None else (os.environ.get(TOKEN_ENV) or None)

    # -- plumbing ----------------------------------------------------------------------
    def _request(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("User-Agent", "faultline-proxy-client")
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            text = exc.read().decode("utf-8", "replace")
            message = text.strip()
            structured = False
            try:
                parsed = json.loads(text)
                if isinstance(parsed, dict) and "error" in parsed:
                    message = str(parsed["error"])
                    structured = True
            except ValueError:
                pass
            raise ProxyAPIError(exc.code, message or exc.reason,
                                route_unknown=exc.code == 404 and not structured) from None
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

    def set_seed(self, seed: int, label: str | None = None) -> dict[str, Any]:
        """Faultline only: every random decision from now on derives from ``seed``.

        Returns ``{"seed", "label", "source", "epoch", "set_mono"}``; records a
        ``seed_set`` event. A real Toxiproxy has no seed: ProxyAPIError (404).
        """
        body: dict[str, Any] = {"seed": int(seed)}
        if label is not None:
            body["label"] = label
        return dict(self._request("POST", "/seed", body))

    def get_seed(self) -> dict[str, Any]:
        """Faultline only: the seed in force (same shape as :meth:`set_seed`)."""
        return dict(self._request("GET", "/seed"))

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

    def proxy_effect(self, name: str) -> dict[str, Any] | None:
        """Faultline only: what the current or last disable of the proxy did.

        ``{"disabled_since": mono | None, "disabled_until": mono | None,
        "effect": {"connections_cut": n, "bytes_discarded": n}}`` (times on
        ``time.monotonic()``); None when the server is a real Toxiproxy.
        """
        try:
            return dict(self._request("GET", f"/proxies/{quote(name, safe='')}/effect"))
        except ProxyAPIError as exc:
            if exc.route_unknown:
                return None
            raise

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
        scope: str | None = None,
    ) -> dict[str, Any]:
        """Add a toxic (name defaults to ``<type>_<stream>``).

        ``scope="exchange"`` (Faultline only) rolls toxicity per request/reply turn. A
        real Toxiproxy ignores the field: the toxic is then removed again and
        ProxyAPIError raised, rather than silently applying it per connection.
        """
        body: dict[str, Any] = {
            "type": type,
            "stream": stream,
            "toxicity": toxicity,
            "attributes": dict(attributes or {}),
        }
        if name is not None:
            body["name"] = name
        if scope is not None:
            body["scope"] = scope
        toxic = dict(self._request("POST", f"/proxies/{quote(proxy, safe='')}/toxics", body))
        if scope not in (None, "connection") and toxic.get("scope") != scope:
            self.remove_toxic(proxy, str(toxic.get("name")))
            raise ProxyAPIError(400, f"the server at {self.url} ignored scope={scope!r} "
                                "(a real Toxiproxy?): toxic not added")
        return toxic

    def update_toxic(
        self,
        proxy: str,
        name: str,
        *,
        toxicity: float | None = None,
        attributes: Mapping[str, Any] | None = None,
        scope: str | None = None,
    ) -> dict[str, Any]:
        """Change a toxic's toxicity, attributes (merged over the current ones), scope."""
        body: dict[str, Any] = {}
        if toxicity is not None:
            body["toxicity"] = toxicity
        if attributes is not None:
            body["attributes"] = dict(attributes)
        if scope is not None:
            body["scope"] = scope
        path = f"/proxies/{quote(proxy, safe='')}/toxics/{quote(name, safe='')}"
        return dict(self._request("POST", path, body))

    def toxic_effect(self, proxy: str, name: str) -> dict[str, Any]:
        """Faultline only: ``{"seen": {...}, "effect": {...}}`` of a toxic, live.

        ``seen``: ``connections``, ``exchanges``, ``bytes`` it was exposed to; ``effect``:
        what it changed, counters named per toxic type (all zero: it never acted).
        """
        path = f"/proxies/{quote(proxy, safe='')}/toxics/{quote(name, safe='')}/effect"
        return dict(self._request("GET", path))

    def remove_toxic(self, proxy: str, name: str, *, effect: bool = False) -> dict[str, Any] | None:
        """Remove a toxic (what a ``timeout`` held is closed).

        With ``effect=True``, returns the toxic's final ``{"seen", "effect"}`` counters,
        taken atomically with the removal; ``None`` when the server is a real Toxiproxy
        (which answers 204 and ignores the query).
        """
        path = f"/proxies/{quote(proxy, safe='')}/toxics/{quote(name, safe='')}"
        answer = self._request("DELETE", path + ("?effect=1" if effect else ""))
        return dict(answer) if effect and isinstance(answer, dict) else None
