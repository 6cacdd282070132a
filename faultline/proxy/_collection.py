"""Every proxy of a server, and the API operations on them (Toxiproxy's semantics).

The checks run in Toxiproxy's order with Toxiproxy's messages; Faultline's own checks
(``_validate``, ``_guard``) come after them, so a request Toxiproxy rejects gets the
error Toxiproxy would give.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from faultline.proxy import _errors as err
from faultline.proxy._errors import APIError, bad_request
from faultline.proxy._events import EventLog
from faultline.proxy._guard import Policy, Route, check_listen_host, find_loop, planned_listen
from faultline.proxy._proxy import Proxy, bind_listener, split_address
from faultline.proxy._seed import SEED_LIMIT, Seeding
from faultline.proxy._toxic import STREAMS, Toxic
from faultline.proxy._toxics import KINDS
from faultline.proxy._validate import (
    check_name,
    go_type_name,
    parse_attributes,
    parse_scope,
    parse_toxicity,
)

__all__ = ["ProxyCollection"]


def _field(body: dict[str, Any], key: str, typ: type, struct: str, default: Any) -> Any:
    value = body.get(key)
    if value is None:
        return default
    if not isinstance(value, typ) or (typ is not bool and isinstance(value, bool)):
        go = {str: "string", bool: "bool"}.get(typ, typ.__name__)
        raise bad_request(
            f"json: cannot unmarshal {go_type_name(value)} into Go struct field "
            f"{struct}.{key} of type {go}"
        )
    return value


def _object(body: Any, what: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise bad_request(f"json: cannot unmarshal {go_type_name(body)} into Go value of type {what}")
    return body


def _check_address(address: str, what: str, *, connect: bool = False) -> None:
    try:
        _, port = split_address(address)
    except ValueError as exc:
        raise bad_request(f"{what}: {exc}") from None
    if connect and port == 0:
        raise APIError(f"{what}: port 0 cannot be connected to (expected 1..65535)", 400)


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

    def __init__(self, loop: asyncio.AbstractEventLoop, events: EventLog, seeding: Seeding,
                 policy: Policy | None = None) -> None:
        self.loop = loop
        self.events = events
        self.seeding = seeding
        self.policy = policy or Policy()
        self.proxies: dict[str, Proxy] = {}

    def _new(self, name: str, listen: str, upstream: str) -> Proxy:
        return Proxy(name, listen, upstream, loop=self.loop, events=self.events,
                     seeding=self.seeding)

    def get(self, name: str) -> Proxy:
        """The proxy called ``name`` (404 if none)."""
        proxy = self.proxies.get(name)
        if proxy is None:
            raise err.proxy_not_found()
        return proxy

    def _routes(self, *, without: Collection[str] = ()) -> list[Route]:
        return [Route(p.name, p.sockname, p.upstream)
                for p in self.proxies.values() if p.name not in without]

    async def _refuse_loop(self, routes: list[Route],
                           socks: tuple[socket.socket | None, ...] = ()) -> None:
        problem = await find_loop(routes)
        if problem is not None:
            for sock in socks:
                if sock is not None:
                    sock.close()
            raise APIError(problem, 400)

    async def _start(self, proxy: Proxy, sock: socket.socket | None = None) -> None:
        window = proxy.window
        reopened = window.since is not None and window.until is None
        await proxy.start(sock)
        extra = window.to_json() if reopened else {}
        self.events.emit("proxy_enabled", proxy=proxy.name, listen=proxy.listen,
                         upstream=proxy.upstream, **extra)

    def _stop(self, proxy: Proxy) -> None:
        if proxy.enabled:
            window = proxy.stop()
            self.events.emit("proxy_disabled", proxy=proxy.name, **window.to_json())

    def _check_room(self, adding: int) -> None:
        if len(self.proxies) + adding > self.policy.max_proxies:
            raise APIError(f"too many proxies: this server allows {self.policy.max_proxies} "
                           "(faultline proxy serve --max-proxies)", 400)

    # -- proxies -----------------------------------------------------------------------
    async def create(self, raw: Any) -> Proxy:
        """``POST /proxies``: 201, 400 on a missing field, 409 on a duplicate name."""
        body = _object(raw, "toxiproxy.Proxy")
        name = _field(body, "name", str, "Proxy", "")
        listen = _field(body, "listen", str, "Proxy", "") or "127.0.0.1:0"
        upstream = _field(body, "upstream", str, "Proxy", "")
        enabled = _field(body, "enabled", bool, "Proxy", True)
        if not name:
            raise err.missing_field("name")
        if not upstream:
            raise err.missing_field("upstream")
        check_name(name, "proxy name")
        _check_address(upstream, "upstream", connect=True)
        _check_address(listen, "listen")
        if name in self.proxies:
            raise err.proxy_already_exists()
        self._check_room(1)
        await check_listen_host(listen, "listen", self.policy)
        sock = bind_listener(listen) if enabled else None
        bound = sock.getsockname()[:2] if sock is not None else None
        await self._refuse_loop([*self._routes(), Route(name, bound, upstream)], (sock,))
        if name in self.proxies:  # created meanwhile, while we resolved names
            if sock is not None:
                sock.close()
            raise err.proxy_already_exists()
        proxy = self._new(name, listen, upstream)
        if sock is not None:
            await proxy.start(sock)
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
        same_listen = _same_listen(proxy.listen, listen)
        if upstream != proxy.upstream:
            _check_address(upstream, "upstream", connect=True)
        if not same_listen:
            _check_address(listen, "listen")
            await check_listen_host(listen, "listen", self.policy)
        planned = (proxy.sockname if same_listen and proxy.enabled else planned_listen(listen))
        await self._refuse_loop([*self._routes(without={name}),
                                 Route(name, planned if enabled else None, upstream)])
        if self.proxies.get(name) is not proxy:
            raise err.proxy_not_found()  # deleted meanwhile
        if not same_listen or upstream != proxy.upstream:
            self._stop(proxy)
            if not same_listen:
                proxy.listen = listen
            proxy.upstream = upstream
        if enabled and not proxy.enabled:
            await self._start(proxy)
            if planned is None:  # a port picked by the kernel: check it too
                problem = await find_loop(self._routes())
                if problem is not None:
                    self._stop(proxy)
                    raise APIError(problem, 400)
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

        Nothing changes unless the whole list is valid, every listener could be bound
        and no proxy would loop into this server. An entry equal to an existing proxy
        keeps it (and its live connections).
        """
        if not isinstance(raw, list):
            raise bad_request(f"json: cannot unmarshal {go_type_name(raw)} into Go value "
                              "of type []toxiproxy.Proxy")
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
            check_name(name, f"name at proxy {i}")
            if name in seen:
                raise bad_request(f"duplicate proxy name {name!r}")
            seen.add(name)
            listen = _field(body, "listen", str, "Proxy", "") or "127.0.0.1:0"
            enabled = _field(body, "enabled", bool, "Proxy", True)
            _check_address(upstream, f"upstream at proxy {i}", connect=True)
            _check_address(listen, f"listen at proxy {i}")
            if enabled:
                await check_listen_host(listen, f"listen at proxy {i}", self.policy)
            plans.append(_Planned(name, listen, upstream, enabled))
        self._check_room(len(seen - set(self.proxies)))
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
        routes = self._routes(without=seen)
        for plan in plans:
            if plan.sock is not None:
                routes.append(Route(plan.name, plan.sock.getsockname()[:2], plan.upstream))
            elif plan.enabled and plan.existing is not None:
                routes.append(Route(plan.name, plan.existing.sockname, plan.upstream))
            else:
                routes.append(Route(plan.name, None, plan.upstream))
        await self._refuse_loop(routes, tuple(p.sock for p in plans))
        result: list[Proxy] = []
        for plan in plans:
            if plan.keep and plan.existing is not None:
                result.append(plan.existing)
                continue
            listen = plan.listen
            if plan.existing is not None:
                if plan.enabled and plan.sock is None:
                    listen = plan.existing.listen  # the same listener: keep its real port
                self.delete(plan.name)
            proxy = self._new(plan.name, listen, plan.upstream)
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
        check_name(name, "toxic name")
        scope = parse_scope(body.get("scope"), "connection", type_, kind.exchange_scope)
        attrs = parse_attributes(type_, kind.attributes, body.get("attributes"), None)
        kind.validate(attrs)
        if len(proxy.toxic_list()) >= self.policy.max_toxics:
            raise APIError(f"too many toxics on proxy {proxy_name!r}: this server allows "
                           f"{self.policy.max_toxics} per proxy (--max-toxics)", 400)
        toxic = Toxic(name, type_, stream, toxicity, attrs, kind, scope)
        proxy.add_toxic(toxic)
        return toxic

    def get_toxic(self, proxy_name: str, toxic_name: str) -> Toxic:
        """One toxic (404 if the proxy or the toxic is unknown)."""
        toxic = self.get(proxy_name).find_toxic(toxic_name)
        if toxic is None:
            raise err.toxic_not_found()
        return toxic

    def update_toxic(self, proxy_name: str, toxic_name: str, raw: Any) -> Toxic:
        """``PATCH /proxies/{proxy}/toxics/{toxic}``: merge attributes, toxicity, scope."""
        proxy = self.get(proxy_name)
        toxic = self.get_toxic(proxy_name, toxic_name)
        body = _object(raw, "struct")
        toxicity = parse_toxicity(body.get("toxicity"), toxic.toxicity)
        attrs = parse_attributes(toxic.type, toxic.kind.attributes, body.get("attributes"),
                                 toxic.attributes)
        scope = parse_scope(body.get("scope"), toxic.scope, toxic.type,
                            toxic.kind.exchange_scope)
        toxic.kind.validate(attrs)
        reroll = toxicity != toxic.toxicity or scope != toxic.scope
        toxic.toxicity = toxicity
        toxic.attributes = attrs
        toxic.scope = scope
        proxy.update_toxic(toxic, reroll)
        return toxic

    def remove_toxic(self, proxy_name: str, toxic_name: str) -> dict[str, Any]:
        """``DELETE /proxies/{proxy}/toxics/{toxic}``; the toxic's final counters."""
        proxy = self.get(proxy_name)
        return proxy.remove_toxic(self.get_toxic(proxy_name, toxic_name))

    def toxic_effect(self, proxy_name: str, toxic_name: str) -> dict[str, Any]:
        """``GET /proxies/{proxy}/toxics/{toxic}/effect``: the live counters."""
        return self.get(proxy_name).toxic_report(self.get_toxic(proxy_name, toxic_name))

    def proxy_effect(self, proxy_name: str) -> dict[str, Any]:
        """``GET /proxies/{proxy}/effect``: the current or last disable window."""
        return self.get(proxy_name).window.to_json()

    # -- seed ----------------------------------------------------------------------------
    def set_seed(self, raw: Any) -> dict[str, Any]:
        """``POST /seed``: every decision from now on derives from the new seed."""
        body = _object(raw, "seed")
        seed = body.get("seed")
        label = body.get("label")
        if isinstance(seed, bool) or not isinstance(seed, int) or not (
            -SEED_LIMIT <= seed < SEED_LIMIT
        ):
            raise APIError(f"seed must be an integer of at most 63 bits, got {seed!r}", 400)
        if label is not None and (not isinstance(label, str) or len(label) > 200):
            raise APIError("label must be a string of at most 200 characters", 400)
        unknown = set(body) - {"seed", "label"}
        if unknown:
            raise APIError(f"unknown field {sorted(unknown)[0]!r} (expected seed, label)", 400)
        self.seeding.set(seed, label)
        for proxy in self.proxies.values():  # live connections draw from the new seed too
            for conn in sorted(proxy.connections, key=lambda c: c.ordinal):
                for link in (conn.up, conn.down):
                    for stub in link.stubs.values():
                        stub.rng = stub.toxic.new_stub_rng()
        self.events.emit("seed_set", seed=seed, label=label)
        return self.seeding.to_json()
