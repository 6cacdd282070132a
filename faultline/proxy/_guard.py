"""What the API refuses to build: loops into itself, listeners off loopback, too much.

- **Loops.** A proxy whose upstream is its own listen address, or another proxy's
  listen address on this server, connects to itself for every connection it accepts:
  one client connection became ~20,000 open files and 1.3 GB in 3 s in a review. Such
  an upstream is refused (400) on create, update and ``/populate``. An upstream host
  is resolved; an address "reaches" a listener when the ports match and the address is
  the listener's, or the listener is on a wildcard (``0.0.0.0``, ``::``) and the
  address is one of this machine's (found by binding to it). Connecting to ``0.0.0.0``
  reaches the machine itself, so it counts as loopback.
- **Remote listeners.** The API has no authentication by default, and a proxy is an
  open door to its upstream: proxies (and the API itself) listen on loopback only,
  unless the server runs with ``--allow-remote-listen``.
- **Caps.** At most ``max_proxies`` proxies and ``max_toxics`` toxics per proxy.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
from dataclasses import dataclass
from typing import Any

from faultline.proxy._errors import APIError

__all__ = [
    "DEFAULT_MAX_PROXIES",
    "DEFAULT_MAX_TOXICS",
    "Policy",
    "Route",
    "check_listen_host",
    "describe",
    "find_loop",
    "is_loopback_host",
    "planned_listen",
]

DEFAULT_MAX_PROXIES = 256
DEFAULT_MAX_TOXICS = 64
_RESOLVE_TIMEOUT = 2.0
_WILDCARDS = ("0.0.0.0", "::", "")


@dataclass(frozen=True)
class Policy:
    """The server's limits (set once, from the command line)."""

    allow_remote_listen: bool = False
    max_proxies: int = DEFAULT_MAX_PROXIES
    max_toxics: int = DEFAULT_MAX_TOXICS
    api_token: str | None = None


@dataclass(frozen=True)
class Route:
    """One proxy as far as loops go: where it listens (if known) and where it connects."""

    name: str
    listen: tuple[str, int] | None  # the bound (or planned, explicit) host and port
    upstream: str


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        addr = ipaddress.ip_address(host.strip("[]").split("%")[0])
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def is_loopback_host(host: str) -> bool | None:
    """True/False for an IP literal or ``localhost``; None for a name to resolve."""
    if host in ("", "localhost"):
        return True
    addr = _ip(host)
    return None if addr is None else addr.is_loopback


async def _resolve(host: str, port: int) -> set[str]:
    """Every address ``host`` resolves to (empty if it does not resolve in time)."""
    addr = _ip(host)
    if addr is not None:
        return {str(addr)}
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(
            loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), _RESOLVE_TIMEOUT)
    except (TimeoutError, OSError, UnicodeError, ValueError):
        return set()
    out = set()
    for info in infos:
        found = _ip(str(info[4][0]))
        if found is not None:
            out.add(str(found))
    return out


async def check_listen_host(listen: str, field: str, policy: Policy) -> None:
    """400 unless ``listen``'s host is loopback (or remote listeners are allowed)."""
    if policy.allow_remote_listen:
        return
    host = listen.rpartition(":")[0].strip("[]") if ":" in listen else ""
    loopback = is_loopback_host(host)
    if loopback is None:
        addresses = await _resolve(host, 0)
        loopback = bool(addresses) and all(_is_loopback(a) for a in addresses)
    if not loopback:
        raise APIError(
            f"{field}: {host or listen!r} is not a loopback address; this server's API has no "
            "authentication, so proxies listen on loopback only (start it with "
            "--allow-remote-listen to allow other addresses)", 400)


def _is_loopback(ip: str) -> bool:
    addr = _ip(ip)
    return addr is not None and addr.is_loopback


_local_cache: dict[str, bool] = {}


def _is_local(ip: str) -> bool:
    """Is ``ip`` an address of this machine? (Binding to it succeeds only then.)"""
    if _is_loopback(ip) or ip in _WILDCARDS:
        return True
    if ip not in _local_cache:
        family = socket.AF_INET6 if ":" in ip else socket.AF_INET
        ok = False
        with contextlib.suppress(OSError), socket.socket(family, socket.SOCK_STREAM) as s:
            s.bind((ip, 0))
            ok = True
        _local_cache[ip] = ok
    return _local_cache[ip]


def _reaches(ip: str, port: int, listen: tuple[str, int]) -> bool:
    """Does connecting to ``ip:port`` land on a listener bound to ``listen``?"""
    host, lport = listen
    if port != lport:
        return False
    target = _ip(ip)
    if target is not None and target.is_unspecified:  # connect(0.0.0.0) is the machine itself
        ip = "::1" if target.version == 6 else "127.0.0.1"
    bound = _ip(host)
    if host in _WILDCARDS or (bound is not None and bound.is_unspecified):
        return _is_local(ip)
    return bound is not None and str(bound) == str(_ip(ip))


async def find_loop(routes: list[Route]) -> str | None:
    """The first route whose upstream reaches a listener of this server, described."""
    resolved: dict[tuple[str, int], set[str]] = {}

    async def addresses(host: str, port: int) -> set[str]:
        if (host, port) not in resolved:
            wildcard = host in _WILDCARDS
            resolved[host, port] = {host or "0.0.0.0"} if wildcard else await _resolve(host, port)
        return resolved[host, port]

    for route in routes:
        try:
            host, port = _split(route.upstream)
        except ValueError:
            continue
        targets = await addresses(host, port)
        for other in routes:
            if other.listen is None:
                continue
            lhost, lport = other.listen
            for bound in await addresses(lhost, lport):
                if any(_reaches(ip, port, (bound, lport)) for ip in targets):
                    whose = "its own" if other.name == route.name else f"proxy {other.name!r}'s"
                    return (f"upstream {route.upstream} of proxy {route.name!r} is {whose} "
                            f"listen address ({lhost}:{lport}) on this server: every connection "
                            "would come back into the proxy in a loop (a connection storm)")
    return None


def _split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


def planned_listen(listen: str) -> tuple[str, int] | None:
    """A planned ``listen`` as (host, port), or None when the port is not known yet (0)."""
    try:
        host, port = _split(listen)
    except ValueError:
        return None
    return (host or "127.0.0.1", port) if port else None


def describe(policy: Policy) -> dict[str, Any]:
    """The limits, for the server's start event."""
    return {"allow_remote_listen": policy.allow_remote_listen,
            "max_proxies": policy.max_proxies, "max_toxics": policy.max_toxics,
            "api_token": policy.api_token is not None}
