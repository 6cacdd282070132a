"""The ``external`` launcher: attach to a stack somebody else runs, from URLs.

No process control (kill/pause/resume/restart raise :class:`StackError`); network faults
only through a fault proxy given as ``TOXIPROXY_URL``. ``stop()`` heals that proxy and
leaves everything running.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from faultline.stack._launcher import HOPS, StackError, StackInfo

__all__ = ["ExternalStack"]


class ExternalStack:
    """A running stack described by URLs (arguments win over the environment:
    ``FAULTLINE_API_URL``, ``FAULTLINE_DATABASE_URL``, ``FAULTLINE_REDIS_URL``,
    ``FAULTLINE_REPLICA_URL``, ``TOXIPROXY_URL``, and ``FAULTLINE_STACK_JSON`` for the
    seed — a ``stack.json``, which may also carry the URLs)."""

    def __init__(self, *, api_url: str | None = None, database_url: str | None = None,
                 redis_url: str | None = None, replica_url: str | None = None,
                 proxy_url: str | None = None, seed: Mapping[str, Any] | None = None,
                 stack_json: str | os.PathLike[str] | None = None,
                 metrics_urls: Mapping[str, str] | None = None,
                 environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        path = stack_json or env.get("FAULTLINE_STACK_JSON")
        data: dict[str, Any] = json.loads(Path(path).read_text()) if path else {}
        stored_seed = data.get("seed") if "seed" in data else (data or None)
        self._info_args: dict[str, Any] = {
            "api_url": api_url or env.get("FAULTLINE_API_URL") or data.get("api_url"),
            "database_url": database_url or env.get("FAULTLINE_DATABASE_URL")
            or data.get("database_url"),
            "redis_url": redis_url or env.get("FAULTLINE_REDIS_URL") or data.get("redis_url"),
            "replica_url": replica_url or env.get("FAULTLINE_REPLICA_URL")
            or data.get("replica_url"),
            "proxy_url": proxy_url or env.get("TOXIPROXY_URL") or data.get("proxy_url"),
            "metrics_urls": dict(metrics_urls or data.get("metrics_urls") or {}),
            "seed": dict(seed or stored_seed or {}),
        }
        self._started = False

    def start(self, service: str | None = None) -> StackInfo:
        """Check the description is complete (and the api answers); nothing is started."""
        if service is not None:
            raise StackError(f"cannot start {service!r}: an external stack is not ours")
        args = self._info_args
        missing = [k for k in ("api_url", "database_url", "redis_url") if not args[k]]
        if missing:
            raise StackError("an external stack needs " + ", ".join(
                f"FAULTLINE_{k.upper()}" for k in missing) + " (or FAULTLINE_STACK_JSON)")
        self._started = True
        return self.info()

    def info(self) -> StackInfo:
        args = dict(self._info_args)
        metrics = dict(args.pop("metrics_urls"))
        metrics.setdefault("api", str(args["api_url"]).rstrip("/") + "/metrics")
        return StackInfo(**args, metrics_urls=metrics,
                         hops=dict(HOPS) if args["proxy_url"] else {}, target="external")

    def stop(self) -> None:
        """Heal the fault proxy (if any); the stack itself keeps running."""
        url = self._info_args["proxy_url"]
        if url:
            from faultline.proxy.client import ProxyClient

            with contextlib.suppress(Exception):
                ProxyClient(str(url), timeout=3.0).reset()

    def _refuse(self, service: str) -> None:
        raise StackError(f"cannot control {service!r}: the external target has no process "
                         "control (use the local or compose target for process faults)")

    def kill(self, service: str, sig: int = 9) -> None:
        self._refuse(service)

    def pause(self, service: str) -> None:
        self._refuse(service)

    def resume(self, service: str) -> None:
        self._refuse(service)

    def restart(self, service: str) -> None:
        self._refuse(service)

    def snapshot(self) -> dict[str, Any]:
        from payments.snapshot import take_snapshot

        info = self.info()
        return dict(asyncio.run(take_snapshot(info.database_url, info.redis_url)))
