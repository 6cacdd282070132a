"""The one shape of a running stack (:class:`StackInfo`), of a launcher (:class:`Launcher`)
and of its failures (:class:`StackError`), whatever the target: local processes, compose
containers, or a stack somebody else runs.

The engine only ever sees these. What is specific to one system (the database URLs its
snapshot reads, the accounts its load uses) travels opaquely in ``endpoints`` and
``workload_data``, read only by that system's profile and workload.
"""

from __future__ import annotations

import signal
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

__all__ = ["Launcher", "StackError", "StackInfo"]


class StackError(RuntimeError):
    """The stack could not be started, attached or controlled; the message says why."""


@dataclass
class StackInfo:
    """Where a running stack answers. Every URL is on 127.0.0.1.

    ``base_url`` is where the workload's clients send their requests. ``proxy_url`` is
    the fault proxy's API and ``hops`` maps the hop names scenarios use to its proxy
    names (only the hops this stack really has). ``services`` are the services process
    faults may act on (none for an external stack). ``endpoints`` are the system's own
    addresses (its databases, read directly, never through a proxy, for the snapshot);
    ``workload_data`` is what its load needs (seed accounts, API keys), written to
    ``RUN_DIR/stack.json`` (mode 0600) for the Locust users.
    """

    system: str
    target: str
    base_url: str
    proxy_url: str | None = None
    hops: dict[str, str] = field(default_factory=dict)
    services: list[str] = field(default_factory=list)
    metrics_urls: dict[str, str] = field(default_factory=dict)
    endpoints: dict[str, str] = field(default_factory=dict)
    workload_data: dict[str, Any] = field(default_factory=dict)
    pids: dict[str, int] = field(default_factory=dict)
    run_dir: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (state files, ``faultline stack up --detach``)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StackInfo:
        """The inverse of :meth:`to_dict` (unknown keys ignored)."""
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


@runtime_checkable
class Launcher(Protocol):
    """What the drill engine calls on any stack.

    ``controls`` names the process faults it supports (a subset of ``kill``, ``pause``,
    ``restart``; empty for a stack that is not ours). The control methods raise
    :class:`StackError` for a service they do not know or cannot control.
    """

    controls: frozenset[str]

    def start(self) -> StackInfo:
        """Start the whole stack (or attach to it) and return where it answers."""

    def stop(self) -> None:
        """Heal every fault and stop everything it started; idempotent."""

    def info(self) -> StackInfo:
        """Where the running stack answers now."""

    def kill(self, service: str, sig: int = signal.SIGKILL) -> int:
        """Send ``sig`` to the service; returns how many processes it reached."""

    def pause(self, service: str) -> int:
        """Freeze the service (SIGSTOP, cgroup freezer); returns processes frozen."""

    def resume(self, service: str) -> int:
        """Thaw a paused service; returns processes resumed."""

    def start_service(self, service: str) -> None:
        """Start a service that is not running (after a kill); returns once it is ready."""

    def restart(self, service: str) -> None:
        """Stop the service gracefully and start it again; returns once it is ready."""
