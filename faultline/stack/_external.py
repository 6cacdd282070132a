"""The ``external`` launcher: attach to a stack somebody else runs, from URLs.

No process control (``controls`` is empty; kill/pause/... raise :class:`StackError`);
network faults only through a fault proxy given as ``TOXIPROXY_URL`` whose proxies carry
the hop names of the system's profile. ``stop()`` heals that proxy and leaves
everything running.

Where things are comes from arguments, else the environment: ``FAULTLINE_BASE_URL``
(where the workload's clients go), ``TOXIPROXY_URL``, the system's own endpoints under
the variable names its profile gives (``FAULTLINE_DATABASE_URL``, ...), and
``FAULTLINE_STACK_JSON``: a JSON file with the workload data (seed accounts, API keys),
which may also carry ``base_url``, ``proxy_url``, ``endpoints`` and ``metrics_urls``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from faultline.stack._launcher import StackError, StackInfo

__all__ = ["ExternalStack"]


class ExternalStack:
    """A running stack described by URLs. ``endpoint_env`` maps the system's endpoint
    names to the variables that give them; ``required`` are those it cannot do without.
    """

    controls: frozenset[str] = frozenset()

    def __init__(self, *, system: str, hops: Mapping[str, str] = {},
                 endpoint_env: Mapping[str, str] = {}, required: Sequence[str] = (),
                 base_url: str | None = None, proxy_url: str | None = None,
                 endpoints: Mapping[str, str] | None = None,
                 workload_data: Mapping[str, Any] | None = None,
                 stack_json: str | os.PathLike[str] | None = None,
                 metrics_urls: Mapping[str, str] | None = None,
                 environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        path = stack_json or env.get("FAULTLINE_STACK_JSON")
        try:
            data: dict[str, Any] = json.loads(Path(path).read_text()) if path else {}
        except (OSError, ValueError) as exc:
            raise StackError(f"FAULTLINE_STACK_JSON {path}: {exc}") from None
        stored = data.get("workload_data", data)
        found = {name: (endpoints or {}).get(name) or env.get(var)
                 or (data.get("endpoints") or {}).get(name)
                 for name, var in endpoint_env.items()}
        self.system = system
        self.required = list(required)
        self.endpoint_env = dict(endpoint_env)
        self.base_url = base_url or env.get("FAULTLINE_BASE_URL") or data.get("base_url")
        self.proxy_url = proxy_url or env.get("TOXIPROXY_URL") or data.get("proxy_url")
        self.endpoints = {k: v for k, v in found.items() if v}
        self.workload_data = dict(workload_data or stored or {})
        self.metrics_urls = dict(metrics_urls or data.get("metrics_urls") or {})
        self.hops = dict(hops)
        self._started = False

    def start(self) -> StackInfo:
        """Check that the description is complete; nothing is started."""
        missing = ([] if self.base_url else ["FAULTLINE_BASE_URL"]) + [
            self.endpoint_env[k] for k in self.required if k not in self.endpoints]
        if missing:
            raise StackError(f"an external {self.system} stack needs {', '.join(missing)} "
                             "(or FAULTLINE_STACK_JSON holding them)")
        self._started = True
        return self.info()

    def info(self) -> StackInfo:
        assert self.base_url is not None
        return StackInfo(system=self.system, target="external", base_url=self.base_url,
                         proxy_url=self.proxy_url,
                         hops=dict(self.hops) if self.proxy_url else {},
                         metrics_urls=dict(self.metrics_urls), endpoints=dict(self.endpoints),
                         workload_data=dict(self.workload_data))

    def stop(self) -> None:
        """Heal the fault proxy (if any); the stack itself keeps running."""
        if self.proxy_url:
            from faultline.proxy.client import ProxyClient

            with contextlib.suppress(Exception):
                ProxyClient(str(self.proxy_url), timeout=3.0).reset()

    def _refuse(self, service: str) -> int:
        raise StackError(f"cannot control {service!r}: the external target has no process "
                         "control (use the local or compose target for process faults)")

    def kill(self, service: str, sig: int = signal.SIGKILL) -> int:
        return self._refuse(service)

    def pause(self, service: str) -> int:
        return self._refuse(service)

    def resume(self, service: str) -> int:
        return self._refuse(service)

    def start_service(self, service: str) -> None:
        self._refuse(service)

    def restart(self, service: str) -> None:
        self._refuse(service)
