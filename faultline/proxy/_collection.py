"""Every proxy of a server, and the API operations on them (Toxiproxy's semantics)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from dataclasses import dataclass
from typing import Any

from faultline.proxy import _errors as err
from faultline.proxy._errors import APIError, bad_request
from faultline.proxy._events import EventLog
from faultline.proxy._proxy import Proxy, bind_listener, split_address
from faultline.proxy._toxic import STREAMS, Toxic, parse_attributes, parse_toxicity
from faultline.proxy._toxics import KINDS

__all__ = ["ProxyCollection"]


def _field(body: dict[str, Any], key: str, typ: type, struct: str, default: Any) -> Any:
    value = body.get(key)
    if value is None:
        return default
    if not isinstance(value, typ) or (typ is not bool and isinstance(value, bool)):
        go = {str: "string", bool: "bool"}.get(typ, typ.__name__)
        got = {str: "string", bool: "bool", int: "number", float: "number", list: "array",
               dict: "object"}.get(type(value), type(value).__name__)
        raise bad_request(
            f"json: cannot unmarshal {got} into Go struct field {struct}.{key} of type {go}"
        )
    return value


def _object(body: Any, what: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise bad_request(f"json: cannot unmarshal {type(body).__name__} into Go value of type {what}")
    return body


def _same_listen(existing: str, wanted: str) -> bool:
    """Is ``wanted`` satisfied by ``existing``? Port 0 matches whatever port was picked."""
    if existing == wanted:
        return True
    try:
        e_host, e_port = split_address(existing)
        w_host, w_port = split_address(wanted)
    except ValueError:
        return False
    return (w_host or "127.0.0.1") == e_host and w_port in (0, e_port)


@dataclass
class _Planned:
    name: str
    listen: str
    upstream: str
    enabled: bool
    existing: Proxy | None = None
    keep: bool = False
    sock: socket.socket | None = None


class ProxyCollection:
    """The proxies of one server, keyed by name; all methods run on the server's loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, events: EventLog, seed: int | None) -> None:
        self.loop = loop
        self.events = events
        self.seed = seed
        self.proxies: dict[str, Proxy] = {}

    def _new(self, name: str, listen: str, upstream: str) -> Proxy:
        return Proxy(name, listen, upstream, loop=self.loop, events=self.events, seed=self.seed)

    def get(self, name: str) -> Proxy:
        """The proxy called ``name`` (404 if none)."""
        proxy = self.proxies.get(name)
        if proxy is None:
            raise err.proxy_not_found()
        return proxy

    async def _start(self, proxy: Proxy, sock: socket.socket | None = None) -> None:
        await proxy.start(sock)
        self.events.emit("proxy_enabled", proxy=proxy.name, listen=proxy.listen,
                         upstream=proxy.upstream)

    def _stop(self, proxy: Proxy) -> None:
        if proxy.enabled:
            proxy.stop()
            self.events.emit("proxy_disabled", proxy=proxy.name)

    # -- proxies -----------------------------------------------------------------------
    async def create(self, raw: Any) -> Proxy:
        """``POST /proxies``: 201, 400 on a missing field, 409 on a duplicate name."""
        body = _object(raw, "toxiproxy.Proxy")
        name = _field(body, "name", str, "Proxy", "")
        listen = _field(body, "listen", str, "Proxy", "")
        upstream = _field(body, "upstream", str, "Proxy", "")
        enabled = _field(body, "enabled", bool, "Proxy", True)
        if not name:
            raise err.missing_field("name")
        if not upstream:
            raise err.missing_field("upstream")
        _check_address(upstream, "upstream")
        if name in self.proxies:
            raise err.proxy_already_exists()
        proxy = self._new(name, listen or "127.0.0.1:0", upstream)
        if enabled:
            await proxy.start()
        self.proxies[name] = proxy
        self.events.emit("proxy_created", proxy=name, listen=proxy.listen, upstream=upstream,
                         enabled=proxy.enabled)
        if enabled:
            self.events.emit("proxy_enabled", proxy=name, listen=proxy.listen, upstream=upstream)
        return proxy

    async def update(self, name: str, raw: Any) -> Proxy:
        """``POST/PATCH /proxies/{name}``: change listen, upstream or enabled."""
        proxy = self.get(name)
        body = _object(raw, "toxiproxy.Proxy")
        listen = _field(body, "listen", str, "Proxy", proxy.listen)
        upstream = _field(body, "upstream", str, "Proxy", proxy.upstream)
        enabled = _field(body, "enabled", bool, "Proxy", proxy.enabled)
        if upstream != proxy.upstream:
            _check_address(upstream, "upstream")
        if not _same_listen(proxy.listen, listen) or upstream != proxy.upstream:
            self._stop(proxy)
            if not _same_listen(proxy.listen, listen):
                proxy.listen = listen
            proxy.upstream = upstream
        if enabled and not proxy.enabled:
            await self._start(proxy)
        elif not enabled:
            self._stop(proxy)
        return proxy

    def delete(self, name: str) -> None:
        """``DELETE /proxies/{name}``: stop it and forget it."""
        proxy = self.get(name)
        self._stop(proxy)
        for toxic in proxy.toxic_list():
            proxy.remove_toxic(toxic)
        del self.proxies[name]
        self.events.emit("proxy_deleted", proxy=name)

    async def populate(self, raw: Any) -> list[Proxy]:
        """``POST /populate``: validate every entry, bind every listener, then apply.

        Nothing changes unless the whole list is valid and every listener could be bound.
        An entry equal to an existing proxy keeps it (and its live connections).
        """
        if not isinstance(raw, list):
            raise bad_request("json: cannot unmarshal object into Go value of type []struct")
        plans: list[_Planned] = []
        seen: set[str] = set()
        for i, item in enumerate(raw, start=1):
            body = _object(item, "toxiproxy.Proxy")
            name = _field(body, "name", str, "Proxy", "")
            upstream = _field(body, "upstream", str, "Proxy", "")
            if not name:
                raise err.missing_field(f"name at proxy {i}")
            if not upstream:
                raise err.missing_field(f"upstream at proxy {i}")
            if name in seen:
                raise bad_request(f"duplicate proxy name {name!r}")
            seen.add(name)
            listen = _field(body, "listen", str, "Proxy", "") or "127.0.0.1:0"
            enabled = _field(body, "enabled", bool, "Proxy", True)
            _check_address(upstream, f"upstream at proxy {i}")
            if enabled:
                _check_address(listen, f"listen at proxy {i}")
            plans.append(_Planned(name, listen, upstream, enabled))
        try:
            for plan in plans:
                plan.existing = self.proxies.get(plan.name)
                ex = plan.existing
                if ex is not None and _same_listen(ex.listen, plan.listen) and (
                    ex.upstream == plan.upstream
                ) and ex.enabled == plan.enabled:
                    plan.keep = True
                elif plan.enabled and not (
                    ex is not None and ex.enabled and _same_listen(ex.listen, plan.listen)
                ):
                    plan.sock = bind_listener(plan.listen)
        except APIError:
            for plan in plans:
                if plan.sock is not None:
                    plan.sock.close()
            raise
        result: list[Proxy] = []
        for plan in plans:
            if plan.keep and plan.existing is not None:
                result.append(plan.existing)
                continue
            if plan.existing is not None:
                self.delete(plan.name)
            proxy = self._new(plan.name, plan.listen, plan.upstream)
            self.proxies[plan.name] = proxy
            self.events.emit("proxy_created", proxy=plan.name, listen=plan.listen,
                             upstream=plan.upstream, enabled=plan.enabled)
            if plan.enabled:
                await self._start(proxy, plan.sock)
            result.append(proxy)
        return result

    async def reset(self) -> None:
        """``POST /reset``: enable every proxy and remove every toxic."""
        for proxy in list(self.proxies.values()):
            if not proxy.enabled:
                await self._start(proxy)
            proxy.remove_all_toxics()
        self.events.emit("reset")

    def close_all(self) -> None:
        """Stop every proxy (server shutdown)."""
        for proxy in self.proxies.values():
            with contextlib.suppress(Exception):
                proxy.stop()

    # -- toxics ------------------------------------------------------------------------
    def add_toxic(self, proxy_name: str, raw: Any) -> Toxic:
        """``POST /proxies/{proxy}/toxics`` with Toxiproxy's checks, in its order."""
        proxy = self.get(proxy_name)
        body = _object(raw, "toxics.ToxicWrapper")
        name = _field(body, "name", str, "ToxicWrapper", "")
        type_ = _field(body, "type", str, "ToxicWrapper", "")
        stream = _field(body, "stream", str, "ToxicWrapper", "downstream")
        toxicity = parse_toxicity(body.get("toxicity"), 1.0)
        if stream.lower() not in STREAMS:
            raise err.invalid_stream()
        if not name:
            name = f"{type_}_{stream}"
        kind = KINDS.get(type_)
        if kind is None:
            raise err.invalid_toxic_type()
        if proxy.find_toxic(name) is not None:
            raise err.toxic_already_exists()
        attrs = parse_attributes(kind, body.get("attributes"), None)
        kind.validate(attrs)
        toxic = Toxic(name, type_, stream, toxicity, attrs, kind)
        proxy.add_toxic(toxic)
        return toxic

    def get_toxic(self, proxy_name: str, toxic_name: str) -> Toxic:
        """One toxic (404 if the proxy or the toxic is unknown)."""
        toxic = self.get(proxy_name).find_toxic(toxic_name)
        if toxic is None:
            raise err.toxic_not_found()
        return toxic

    def update_toxic(self, proxy_name: str, toxic_name: str, raw: Any) -> Toxic:
        """``PATCH /proxies/{proxy}/toxics/{toxic}``: merge attributes and toxicity."""
        proxy = self.get(proxy_name)
        toxic = proxy.find_toxic(toxic_name)
        if toxic is None:
            raise err.toxic_not_found()
        body = _object(raw, "struct")
        toxicity = parse_toxicity(body.get("toxicity"), toxic.toxicity)
        attrs = parse_attributes(toxic.kind, body.get("attributes"), toxic.attributes)
        toxic.kind.validate(attrs)
        changed = toxicity != toxic.toxicity
        toxic.toxicity = toxicity
        toxic.attributes = attrs
        proxy.update_toxic(toxic, changed)
        return toxic

    def remove_toxic(self, proxy_name: str, toxic_name: str) -> None:
        """``DELETE /proxies/{proxy}/toxics/{toxic}``."""
        proxy = self.get(proxy_name)
        toxic = proxy.find_toxic(toxic_name)
        if toxic is None:
            raise err.toxic_not_found()
        proxy.remove_toxic(toxic)


def _check_address(address: str, what: str) -> None:
    try:
        split_address(address)
    except ValueError as exc:
        raise bad_request(f"{what}: {exc}") from None
