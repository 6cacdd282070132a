"""Container nemesis: faults on the services of a compose stack, through the Docker SDK.

The faults are the container twins of the local target's process faults:

=================  =========================================  ===========================
fault              what the engine does                       healed by
=================  =========================================  ===========================
``kill``           ``docker kill --signal SIG`` (default KILL)  ``start`` (``restart_after``)
``pause``          cgroup freezer (every process frozen)       ``unpause``
``stop``           ``docker stop`` (TERM, then KILL)           ``start``
``restart``        ``docker restart`` (TERM, wait, start)      nothing to heal
``disconnect``     ``docker network disconnect``               ``connect``
=================  =========================================  ===========================

Each injection and each heal is one nemesis line of the history (contracts §6):
``{"process": "nemesis", "type": "info", "f": "start"|"stop", "time", "wall",
"value": {"fault": "kill", "service": "worker-1", ...}}``, handed to ``record``.
``heal()`` undoes every fault still in force and is safe to call twice, also after an
error: the drill calls it on every exit path.

Services are compose service names; the scenario name ``proxy`` means ``toxiproxy``.
Under host networking there is no network to disconnect from: ``disconnect`` raises
``ContainerFaultError`` there (use a ``toxic`` on the hop instead).
"""

from __future__ import annotations

import contextlib
import signal as _signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ContainerControl", "ContainerFaultError", "ContainerNemesis"]

PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
#: scenario service names that differ from compose service names
ALIASES = {"proxy": "toxiproxy"}

Record = Callable[[dict[str, Any]], None]


class ContainerFaultError(RuntimeError):
    """A container fault could not be injected or healed; the message says which and why."""


def _signal_name(sig: str | int) -> str:
    if isinstance(sig, int):
        return _signal.Signals(sig).name
    name = sig.upper()
    return name if name.startswith("SIG") else f"SIG{name}"


@dataclass
class ContainerNemesis:
    """Inject and heal faults on the containers of one compose project.

    ``client`` is a Docker SDK client (``docker.from_env(version="auto")`` when omitted);
    ``record`` receives each nemesis history line; ``clock`` is ``time.monotonic_ns``
    (the history's clock) unless a test injects another.
    """

    project: str
    client: Any = None
    record: Record | None = None
    clock: Callable[[], int] = time.monotonic_ns
    events: list[dict[str, Any]] = field(default_factory=list)
    _paused: dict[str, str] = field(default_factory=dict, init=False)
    _down: dict[str, str] = field(default_factory=dict, init=False)
    _cut: dict[str, set[str]] = field(default_factory=dict, init=False)
    _timers: list[threading.Timer] = field(default_factory=list, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def __post_init__(self) -> None:
        if self.client is None:
            from faultline.stack._compose import docker_client

            self.client = docker_client()

    # ----------------------------------------------------------------- lookup
    def container(self, service: str) -> Any:
        """The container of ``service`` in this project (any state)."""
        name = ALIASES.get(service, service)
        found = self.client.containers.list(
            all=True,
            filters={"label": [f"{PROJECT_LABEL}={self.project}", f"{SERVICE_LABEL}={name}"]},
        )
        if not found:
            raise ContainerFaultError(f"no container for service {service!r} in project {self.project!r}")
        return found[0]

    def state(self, service: str) -> str:
        """``running``, ``paused``, ``exited``, ... as the engine reports it."""
        box = self.container(service)
        box.reload()
        return str(box.attrs["State"]["Status"])

    def _emit(self, f: str, fault: str, service: str, **value: Any) -> dict[str, Any]:
        line = {
            "process": "nemesis",
            "type": "info",
            "f": f,
            "time": self.clock(),
            "wall": time.time(),
            "value": {"fault": fault, "service": service, "target": "container", **value},
        }
        self.events.append(line)
        if self.record is not None:
            self.record(line)
        return line

    # ----------------------------------------------------------------- faults
    def kill(self, service: str, signal: str | int = "SIGKILL",
             restart_after: float | None = None, **extra: Any) -> dict[str, Any]:
        """Send ``signal`` to the container's main process; start it again after
        ``restart_after`` seconds when given (else on ``heal()``)."""
        sig = _signal_name(signal)
        box = self.container(service)
        try:
            box.kill(signal=sig)
        except Exception as exc:
            raise ContainerFaultError(f"kill {service} with {sig}: {exc}") from exc
        with self._lock:
            self._down[service] = "kill"
        line = self._emit("start", "kill", service, signal=sig, restart_after=restart_after, **extra)
        if restart_after is not None:
            timer = threading.Timer(restart_after, self._restart_quietly, args=(service, extra))
            timer.daemon = True
            self._timers.append(timer)
            timer.start()
        return line

    def _restart_quietly(self, service: str, extra: dict[str, Any]) -> None:
        with contextlib.suppress(ContainerFaultError):  # heal() retries and reports
            self.start(service, **extra)

    def start(self, service: str, **extra: Any) -> dict[str, Any] | None:
        """Start a killed or stopped container (no-op if it is already running)."""
        box = self.container(service)
        box.reload()
        with self._lock:
            was_down = self._down.pop(service, None)
        if box.attrs["State"]["Status"] != "running":
            try:
                box.start()
            except Exception as exc:
                raise ContainerFaultError(f"start {service}: {exc}") from exc
        if was_down is not None:
            return self._emit("stop", was_down, service, **extra)
        return None

    def stop(self, service: str, timeout: float = 5.0, **extra: Any) -> dict[str, Any]:
        """``docker stop``: SIGTERM, then SIGKILL after ``timeout`` seconds."""
        box = self.container(service)
        try:
            box.stop(timeout=int(timeout))
        except Exception as exc:
            raise ContainerFaultError(f"stop {service}: {exc}") from exc
        with self._lock:
            self._down[service] = "stop"
        return self._emit("start", "stop", service, timeout=timeout, **extra)

    def pause(self, service: str, attempts: int = 4, **extra: Any) -> dict[str, Any]:
        """Freeze every process of the container (cgroup freezer).

        The freezer can fail under heavy load ("unable to freeze": a process did not reach
        the frozen state in time; runc thaws and gives up). It is retried; if it still
        fails, every process of the container gets SIGSTOP instead (``method: sigstop``
        in the history line) — the same fault as the local target's pause.
        """
        box = self.container(service)
        error: Exception | None = None
        for attempt in range(attempts):
            try:
                box.pause()
            except Exception as exc:
                error = exc
                time.sleep(0.2 * (attempt + 1))
                continue
            with self._lock:
                self._paused[service] = "freezer"
            return self._emit("start", "pause", service, method="freezer", **extra)
        try:
            self._signal_all(box, "STOP")
        except Exception as exc:
            raise ContainerFaultError(f"pause {service}: freezer: {error}; SIGSTOP: {exc}") from exc
        with self._lock:
            self._paused[service] = "sigstop"
        return self._emit("start", "pause", service, method="sigstop", freezer_error=str(error),
                          **extra)

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

    def unpause(self, service: str, **extra: Any) -> dict[str, Any] | None:
        """Thaw a paused container (no-op if it is not paused)."""
        box = self.container(service)
        box.reload()
        with self._lock:
            method = self._paused.get(service)
        try:
            if box.attrs["State"].get("Paused"):
                box.unpause()
            if method == "sigstop":
                self._signal_all(box, "CONT")
        except Exception as exc:
            raise ContainerFaultError(f"unpause {service}: {exc}") from exc
        with self._lock:
            self._paused.pop(service, None)
        return self._emit("stop", "pause", service, **extra) if method else None

    def restart(self, service: str, timeout: float = 5.0, **extra: Any) -> dict[str, Any]:
        """``docker restart``: SIGTERM, wait up to ``timeout`` s, SIGKILL, start. The
        history gets a ``start`` line before and a ``stop`` line once it runs again."""
        box = self.container(service)
        line = self._emit("start", "restart", service, timeout=timeout, **extra)
        try:
            box.restart(timeout=int(timeout))
        except Exception as exc:
            raise ContainerFaultError(f"restart {service}: {exc}") from exc
        self._emit("stop", "restart", service, **extra)
        return line

    def disconnect(self, service: str, network: str | None = None, **extra: Any) -> dict[str, Any]:
        """Cut the container off ``network`` (default: every network it is on)."""
        box = self.container(service)
        box.reload()
        settings = box.attrs.get("HostConfig", {})
        if settings.get("NetworkMode") == "host":
            raise ContainerFaultError(
                f"{service} uses host networking: there is no network to disconnect it from"
            )
        nets = [network] if network else list(box.attrs["NetworkSettings"]["Networks"])
        for net in nets:
            try:
                self.client.networks.get(net).disconnect(box)
            except Exception as exc:
                raise ContainerFaultError(f"disconnect {service} from {net}: {exc}") from exc
            with self._lock:
                self._cut.setdefault(service, set()).add(net)
        return self._emit("start", "disconnect", service, networks=nets, **extra)

    def connect(self, service: str, **extra: Any) -> dict[str, Any] | None:
        """Reconnect ``service`` to every network ``disconnect`` took it off."""
        with self._lock:
            nets = sorted(self._cut.pop(service, set()))
        if not nets:
            return None
        box = self.container(service)
        aliases = [ALIASES.get(service, service)]
        for net in nets:
            try:
                self.client.networks.get(net).connect(box, aliases=aliases)
            except Exception as exc:
                raise ContainerFaultError(f"connect {service} to {net}: {exc}") from exc
        return self._emit("stop", "disconnect", service, networks=nets, **extra)

    # ----------------------------------------------------------------- heal
    def heal(self) -> list[str]:
        """Undo every fault still in force; returns the errors (empty when all healed)."""
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        errors: list[str] = []
        with self._lock:
            paused, down, cut = sorted(self._paused), sorted(self._down), sorted(self._cut)
        for service in paused:
            try:
                self.unpause(service, healed_by="heal")
            except Exception as exc:
                errors.append(str(exc))
        for service in cut:
            try:
                self.connect(service, healed_by="heal")
            except Exception as exc:
                errors.append(str(exc))
        for service in down:
            try:
                self.start(service, healed_by="heal")
            except Exception as exc:
                errors.append(str(exc))
        return errors

    def wait_running(self, service: str, timeout: float = 60.0, healthy: bool = True) -> None:
        """Block until ``service`` runs again (and is healthy, if it has a health check)."""
        deadline = time.monotonic() + timeout
        while True:
            box = self.container(service)
            box.reload()
            state = box.attrs["State"]
            health = (state.get("Health") or {}).get("Status")
            if state["Status"] == "running" and (not healthy or health in (None, "healthy")):
                return
            if time.monotonic() > deadline:
                raise ContainerFaultError(
                    f"{service} not {'healthy' if healthy else 'running'} after {timeout:.0f}s "
                    f"(status {state['Status']}, health {health})"
                )
            time.sleep(0.2)


class ContainerControl:
    """``faultline.faults.ServiceControl`` on compose containers, so that the runner's
    ``ProcessNemesis`` (which writes the history lines) drives containers exactly as it
    drives local processes: ``kill`` = ``docker kill -s``, ``pause``/``resume`` = cgroup
    freezer, ``start``, ``restart`` = ``docker restart`` then wait until healthy."""

    def __init__(self, project: str, client: Any = None, *, restart_timeout: float = 5.0,
                 ready_timeout: float = 90.0) -> None:
        # A nemesis without a record function: lookups and engine calls only.
        self._nemesis = ContainerNemesis(project=project, client=client)
        self.restart_timeout = restart_timeout
        self.ready_timeout = ready_timeout

    def kill(self, service: str, sig: int = _signal.SIGKILL) -> None:
        """Send ``sig`` to the container's main process."""
        self._nemesis.kill(service, signal=sig)

    def pause(self, service: str) -> None:
        """Freeze the container."""
        self._nemesis.pause(service)

    def resume(self, service: str) -> None:
        """Thaw the container."""
        self._nemesis.unpause(service)

    def start(self, service: str) -> None:
        """Start the container again and wait until it is healthy."""
        self._nemesis.start(service)
        self._nemesis.wait_running(service, timeout=self.ready_timeout)

    def restart(self, service: str) -> None:
        """``docker restart`` and wait until it is healthy."""
        self._nemesis.restart(service, timeout=self.restart_timeout)
        self._nemesis.wait_running(service, timeout=self.ready_timeout)
