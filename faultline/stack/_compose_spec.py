"""What one system's containerised stack is: the :class:`ComposeSpec` its profile gives
the compose launcher (:class:`~faultline.stack._compose.ComposeStack`).

The launcher is generic; a spec says which compose files make the stack, which port
settings there are and what answers on them (the entry the workload's clients use, the
fault proxy's API, each service's metrics, the system's own endpoints), which hops the
proxy config creates, which services process faults may act on, which services are
one-shot, and how to obtain the workload data (a :class:`OneOff` command).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from faultline.stack._launcher import StackError

__all__ = ["ComposeError", "ComposeSpec", "OneOff"]


class ComposeError(StackError):
    """The containerised stack could not be brought up (or down); the message says why."""


@dataclass(frozen=True, slots=True)
class OneOff:
    """A command run once in a fresh container of ``service`` (``compose run --rm
    --no-deps``), after the stack is healthy; its standard output ends in one JSON object,
    the workload data (seed accounts, API keys...)."""

    service: str
    argv: tuple[str, ...]
    timeout: float = 180.0


def _no_endpoints(ports: Mapping[str, int]) -> Mapping[str, str]:
    return {}


@dataclass(frozen=True)
class ComposeSpec:
    """What one system's containerised stack is; the system's profile builds it.

    ``ports`` are the port settings with their defaults (``{"api": 8080, ...}``), read
    from the variable ``port_env`` names (``FAULTLINE_API_PORT``: the same variables the
    compose files interpolate). From them: ``base_url`` is ``entry``'s port, the fault
    proxy's API is ``proxy``'s, ``metrics`` maps a service to the port its
    ``metrics_path`` answers on, and ``endpoints(ports)`` gives the system's own
    addresses (its databases through their published ports, for its snapshot).
    ``hops`` maps hop names to the proxy names of the compose proxy config (only the
    hops this stack has). ``services`` are what process faults may act on, by the names
    scenarios use; ``containers`` maps those that differ to compose service names.
    ``one_shot`` services must exit 0 (migrations); the others must stay up and healthy.
    ``workload`` yields the workload data; ``env`` is added to the compose CLI's
    environment (how the system's bugs reach its containers).
    """

    system: str
    files: tuple[Path, ...]
    ports: Mapping[str, int]
    entry: str
    hops: Mapping[str, str] = field(default_factory=dict)
    services: tuple[str, ...] = ()
    proxy: str | None = None
    metrics: Mapping[str, str] = field(default_factory=dict)
    metrics_path: str = "/metrics"
    endpoints: Callable[[Mapping[str, int]], Mapping[str, str]] = _no_endpoints
    workload: OneOff | None = None
    one_shot: frozenset[str] = frozenset()
    containers: Mapping[str, str] = field(default_factory=dict)
    #: compose files added (after ``files``) when the stack runs on the host network
    host_network_files: tuple[Path, ...] = ()
    port_env: str = "FAULTLINE_{NAME}_PORT"
    env: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        named = {self.entry, *([self.proxy] if self.proxy else []), *self.metrics.values()}
        unknown = sorted(named - set(self.ports))
        if unknown:
            raise ValueError(f"ComposeSpec {self.system}: no port setting called "
                             f"{', '.join(unknown)}")
        if not self.files:
            raise ValueError(f"ComposeSpec {self.system}: no compose file")

    def port_variable(self, name: str) -> str:
        """The environment variable of port setting ``name`` (``FAULTLINE_API_PORT``)."""
        return self.port_env.format(NAME=name.upper().replace("-", "_"), name=name)

    def read_ports(self, env: Mapping[str, str]) -> dict[str, int]:
        """Every port setting from ``env``, its default otherwise."""
        out: dict[str, int] = {}
        for name, default in self.ports.items():
            var = self.port_variable(name)
            raw = env.get(var, "").strip()
            try:
                out[name] = int(raw) if raw else int(default)
            except ValueError:
                raise ComposeError(f"{var}={raw!r} is not a port number") from None
        return out
