"""Container control: process faults on the containers of one compose project.

The compose launcher's ``kill``/``pause``/``resume``/``start_service``/``restart`` are
these operations, through the Docker SDK (the engine's own API, no CLI parsing):

=================  =========================================  ===========================
operation          engine call                                 undone by
=================  =========================================  ===========================
``kill``           ``docker kill -s SIG`` (the main process)   ``start``
``pause``          cgroup freezer (``docker pause``); SIGSTOP  ``resume``
                   of every process when the freezer fails
``stop``           ``docker stop`` (TERM, then KILL)           ``start``
``restart``        ``docker restart``, then healthy again      nothing to undo
``disconnect``     ``docker network disconnect``               ``connect``
=================  =========================================  ===========================

Each fault returns how many processes it reached (the container's processes when it
struck, as ``docker top`` lists them): the effect the drill's fault report needs, so a
kill of a container that was not running counts 0, never 1. The history lines are the
drill's business (:class:`faultline.faults.ProcessNemesis` writes them); this module only
acts and counts. ``heal()`` undoes every fault it made that is still in force and is safe
to call twice.

Services are compose service names, or the names ``aliases`` maps to them. Under host
networking there is no network to disconnect from: ``disconnect`` raises there.
"""

from __future__ import annotations

import contextlib
import os
import signal as _signal
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from faultline.stack._launcher import StackError

__all__ = [
    "ENDING_SIGNALS",
    "PROJECT_LABEL",
    "SERVICE_LABEL",
    "ContainerControl",
    "ContainerFaultError",
    "docker_client",
    "signal_name",
]

PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
#: signals after which a kill waits for the container to exit (as the local launcher does)
ENDING_SIGNALS = frozenset({_signal.SIGKILL, _signal.SIGTERM, _signal.SIGINT, _signal.SIGQUIT})
#: seconds a kill with an ending signal waits for the exit before it sends SIGKILL
EXIT_WAIT = 15.0


class ContainerFaultError(StackError):
    """A container fault could not be injected or healed; the message says which and why."""


def docker_client(timeout: float = 30.0) -> Any:
    """A Docker SDK client for ``DOCKER_HOST`` (or the default socket), API version
    negotiated (the SDK's default version is newer than older engines accept)."""
    try:
        import docker
    except ModuleNotFoundError as exc:  # pragma: no cover - the drill extra installs it
        raise StackError("the `docker` package is needed: pip install 'faultline[drill]'") from exc
    try:
        return docker.from_env(version="auto", timeout=int(timeout))
    except Exception as exc:
        host = os.environ.get("DOCKER_HOST", "the default socket")
        raise StackError(f"no Docker engine answers at {host}: {exc}") from exc


def signal_name(sig: str | int) -> str:
    """``9`` / ``"kill"`` / ``"SIGKILL"`` -> ``"SIGKILL"`` (what the engine API takes)."""
    if isinstance(sig, int):
        return _signal.Signals(sig).name
    name = sig.upper()
    return name if name.startswith("SIG") else f"SIG{name}"


class ContainerControl:
    """Process faults on the containers of compose project ``project``.

    ``client`` is a Docker SDK client (:func:`docker_client` when omitted); ``aliases``
    maps service names as scenarios write them to compose service names where they
    differ; ``ready_timeout`` bounds the wait for a started container to be healthy;
    ``log`` hears about what went differently than asked (the freezer fallback).
    """

    def __init__(self, project: str, client: Any = None, *,
                 aliases: Mapping[str, str] | None = None, restart_timeout: float = 5.0,
                 ready_timeout: float = 90.0, log: Callable[[str], None] | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.project = project
        self.client = client if client is not None else docker_client()
        self.aliases = dict(aliases or {})
        self.restart_timeout = restart_timeout
        self.ready_timeout = ready_timeout
        self.log = log or (lambda msg: None)
        self.sleep = sleep
        #: service -> how it was paused (``freezer`` or ``sigstop``) and processes frozen
        self._paused: dict[str, tuple[str, int]] = {}
        self._down: set[str] = set()
        self._cut: dict[str, set[str]] = {}
        self._lock = threading.Lock()

    # ----------------------------------------------------------------- lookup
    def container(self, service: str) -> Any:
        """The container of ``service`` in this project (any state)."""
        name = self.aliases.get(service, service)
        found = self.client.containers.list(
            all=True,
            filters={"label": [f"{PROJECT_LABEL}={self.project}", f"{SERVICE_LABEL}={name}"]},
        )
        if not found:
            raise ContainerFaultError(f"no container for service {service!r} in project "
                                      f"{self.project!r}")
        return found[0]

    def state(self, service: str) -> dict[str, Any]:
        """The engine's ``State`` of the service's container (``Status``, ``Paused``, ...)."""
        box = self.container(service)
        box.reload()
        return dict(box.attrs.get("State") or {})

    @staticmethod
    def processes(box: Any) -> int:
        """How many processes run in the container now (``docker top``); at least 1 for
        a container the engine says is running or paused, 0 otherwise."""
        state = box.attrs.get("State") or {}
        if state.get("Status") not in ("running", "paused"):
            return 0
        try:
            return max(1, len(box.top().get("Processes") or []))
        except Exception:  # top is not vital: the main process is there
            return 1

    # ----------------------------------------------------------------- faults
    def kill(self, service: str, sig: str | int = _signal.SIGKILL,
             exit_wait: float = EXIT_WAIT) -> int:
        """Send ``sig`` to the container's main process; returns the processes reached.

        After an ending signal (KILL, TERM, INT, QUIT) it returns once the container has
        exited (SIGKILL after ``exit_wait`` s), so that a following ``start`` does not
        find it still running and do nothing. A paused container is thawed first: a
        frozen process cannot exit, and the engine refuses to signal it.
        """
        name = signal_name(sig)
        number = _signal.Signals[name]
        box = self.container(service)
        box.reload()
        reached = self.processes(box)
        if not reached:
            return 0
        if (box.attrs.get("State") or {}).get("Paused") or service in self._paused:
            self.resume(service)
        try:
            box.kill(signal=name)
        except Exception as exc:
            raise ContainerFaultError(f"kill {service} with {name}: {exc}") from exc
        with self._lock:
            self._down.add(service)
        if number in ENDING_SIGNALS and not self._wait_exited(box, exit_wait):
            with contextlib.suppress(Exception):
                box.kill(signal="SIGKILL")
            if not self._wait_exited(box, 5.0):
                raise ContainerFaultError(f"{service} still runs {exit_wait + 5:.0f}s after "
                                          f"{name} and SIGKILL")
        return reached

    def _wait_exited(self, box: Any, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            box.reload()
            if (box.attrs.get("State") or {}).get("Status") not in ("running", "paused",
                                                                    "restarting"):
                return True
            if time.monotonic() >= deadline:
                return False
            self.sleep(0.1)

    def start(self, service: str, *, wait: bool = True) -> None:
        """Start a killed or stopped container (nothing if it runs) and, with ``wait``,
        return once it is healthy (or running, without a health check)."""
        box = self.container(service)
        box.reload()
        if (box.attrs.get("State") or {}).get("Status") != "running":
            try:
                box.start()
            except Exception as exc:
                raise ContainerFaultError(f"start {service}: {exc}") from exc
        with self._lock:
            self._down.discard(service)
        if wait:
            self.wait_running(service, timeout=self.ready_timeout)

    def stop(self, service: str, timeout: float = 5.0) -> int:
        """``docker stop``: SIGTERM, then SIGKILL after ``timeout`` s; processes reached."""
        box = self.container(service)
        box.reload()
        reached = self.processes(box)
        try:
            box.stop(timeout=int(timeout))
        except Exception as exc:
            raise ContainerFaultError(f"stop {service}: {exc}") from exc
        with self._lock:
            self._down.add(service)
        return reached

    def pause(self, service: str, attempts: int = 4) -> int:
        """Freeze every process of the container (cgroup freezer); processes frozen.

        The freezer can fail under heavy load ("unable to freeze": a process did not
        reach the frozen state in time; runc thaws and gives up). It is retried; if it
        still fails, every process of the container gets SIGSTOP instead, the same fault
        as the local target's pause (and ``log`` says so).
        """
        box = self.container(service)
        box.reload()
        if (box.attrs.get("State") or {}).get("Status") != "running":
            raise ContainerFaultError(f"{service} is not running")
        reached = self.processes(box)
        error: Exception | None = None
        for attempt in range(attempts):
            try:
                box.pause()
            except Exception as exc:
                error = exc
                self.sleep(0.2 * (attempt + 1))
                continue
            with self._lock:
                self._paused[service] = ("freezer", reached)
            return reached
        try:
            self._signal_all(box, "STOP")
        except Exception as exc:
            raise ContainerFaultError(f"pause {service}: freezer: {error}; SIGSTOP: {exc}") from exc
        with self._lock:
            self._paused[service] = ("sigstop", reached)
        self.log(f"pause {service}: the cgroup freezer failed ({error}); every process "
                 "of the container got SIGSTOP instead")
        return reached

    @staticmethod
    def _signal_all(box: Any, sig: str) -> None:
        # kill(-1) reaches every process of the container's pid namespace but its init;
        # the engine signals the init itself. CONT goes to the init first, STOP last.
        if sig == "CONT":
            box.kill(signal=f"SIG{sig}")
        code, out = box.exec_run(["sh", "-c", f"kill -{sig} -1"], user="root")
        if code not in (0, None):
            raise ContainerFaultError(f"kill -{sig} -1 in the container: exit {code}: {out!r}")
        if sig == "STOP":
            box.kill(signal=f"SIG{sig}")

    def resume(self, service: str) -> int:
        """Thaw a paused container; returns the processes thawed (0 if none was paused)."""
        box = self.container(service)
        box.reload()
        with self._lock:
            method, frozen = self._paused.get(service, ("", 0))
        paused = bool((box.attrs.get("State") or {}).get("Paused"))
        if not paused and method != "sigstop":
            with self._lock:
                self._paused.pop(service, None)
            return 0
        try:
            if paused:
                box.unpause()
            if method == "sigstop":
                self._signal_all(box, "CONT")
        except Exception as exc:
            raise ContainerFaultError(f"resume {service}: {exc}") from exc
        with self._lock:
            self._paused.pop(service, None)
        return frozen or self.processes(box)

    def restart(self, service: str, timeout: float | None = None) -> None:
        """``docker restart`` (SIGTERM, up to ``timeout`` s, SIGKILL, start); returns once
        the container is healthy again."""
        box = self.container(service)
        box.reload()
        if (box.attrs.get("State") or {}).get("Paused"):
            self.resume(service)
        try:
            box.restart(timeout=int(self.restart_timeout if timeout is None else timeout))
        except Exception as exc:
            raise ContainerFaultError(f"restart {service}: {exc}") from exc
        with self._lock:
            self._down.discard(service)
        self.wait_running(service, timeout=self.ready_timeout)

    def disconnect(self, service: str, network: str | None = None) -> list[str]:
        """Cut the container off ``network`` (default: every network it is on)."""
        box = self.container(service)
        box.reload()
        if (box.attrs.get("HostConfig") or {}).get("NetworkMode") == "host":
            raise ContainerFaultError(
                f"{service} uses host networking: there is no network to disconnect it from")
        nets = [network] if network else list(box.attrs["NetworkSettings"]["Networks"])
        for net in nets:
            try:
                self.client.networks.get(net).disconnect(box)
            except Exception as exc:
                raise ContainerFaultError(f"disconnect {service} from {net}: {exc}") from exc
            with self._lock:
                self._cut.setdefault(service, set()).add(net)
        return nets

    def connect(self, service: str) -> list[str]:
        """Reconnect ``service`` to every network ``disconnect`` took it off."""
        with self._lock:
            nets = sorted(self._cut.pop(service, set()))
        if not nets:
            return []
        box = self.container(service)
        aliases = [self.aliases.get(service, service)]
        for net in nets:
            try:
                self.client.networks.get(net).connect(box, aliases=aliases)
            except Exception as exc:
                raise ContainerFaultError(f"connect {service} to {net}: {exc}") from exc
        return nets

    # ----------------------------------------------------------------- heal
    def heal(self, *, wait: bool = False) -> list[str]:
        """Undo every fault still in force; returns the errors (empty when all healed).
        ``wait``: also wait until every container started again is healthy."""
        errors: list[str] = []
        with self._lock:
            paused, down, cut = sorted(self._paused), sorted(self._down), sorted(self._cut)
        steps = ([(self.resume, s) for s in paused] + [(self.connect, s) for s in cut]
                 + [(lambda s: self.start(s, wait=wait), s) for s in down])
        for step, service in steps:
            try:
                step(service)
            except Exception as exc:
                errors.append(str(exc))
        return errors

    def wait_running(self, service: str, timeout: float = 60.0, healthy: bool = True) -> None:
        """Block until ``service`` runs again (and is healthy, if it has a health check)."""
        deadline = time.monotonic() + timeout
        while True:
            state = self.state(service)
            health = (state.get("Health") or {}).get("Status")
            if state.get("Status") == "running" and (not healthy or health in (None, "healthy")):
                return
            if time.monotonic() > deadline:
                raise ContainerFaultError(
                    f"{service} not {'healthy' if healthy else 'running'} after {timeout:.0f}s "
                    f"(status {state.get('Status')}, health {health})")
            self.sleep(0.2)
