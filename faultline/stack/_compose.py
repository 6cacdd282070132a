"""The ``compose`` launcher: the payment stack as containers, from compose/docker-compose.yml.

``ComposeStack`` renders the compose files into one resolved file in the run directory,
brings it up with the ``docker compose`` CLI (the v2 plugin, else the ``docker-compose``
binary), waits until every long-running service is healthy (through the Docker SDK),
seeds accounts through the published PostgreSQL port, and on ``stop()`` saves every
container's log into ``RUN_DIR/logs/`` before ``down -v``.

Every published port is on 127.0.0.1, and a service listens inside its container on the
port it is published on, so URLs come from the port settings (``FAULTLINE_*_PORT``) in
both network modes: the default bridge network, and host networking (the CI override).

Under host networking the compose file's ``ports:`` are meaningless, and docker-compose v1
refuses them, so the resolved file drops them for ``network_mode: host`` services, as the
engine itself would.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "COMPOSE_DIR",
    "ComposeError",
    "ComposePorts",
    "ComposeStack",
    "ComposeStackInfo",
    "compose_command",
    "docker_client",
]

#: compose/ at the repository root (docker-compose.yml, the CI override, toxiproxy.json)
COMPOSE_DIR = Path(__file__).resolve().parents[2] / "compose"
PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
#: one-shot services: they must exit 0, the rest must stay up and healthy
ONE_SHOT = frozenset({"migrate"})
DEFAULT_SEED = ("--merchants", "2", "--accounts", "10", "--balance", "100000", "--currency", "EUR")


class ComposeError(RuntimeError):
    """The containerised stack could not be brought up (or down); the message says why."""


@dataclass(frozen=True, slots=True)
class ComposePorts:
    """Host ports of the stack (each also the port the service listens on in its container)."""

    postgres: int = 5432
    redis: int = 6379
    toxiproxy: int = 8474
    api: int = 8080
    risk: int = 8081
    relay: int = 8082
    worker1: int = 8083
    worker2: int = 8084

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ComposePorts:
        """Read ``FAULTLINE_<NAME>_PORT`` (as docker-compose.yml does), defaults otherwise."""
        values: dict[str, int] = {}
        for name in cls.__dataclass_fields__:
            raw = env.get(f"FAULTLINE_{name.upper()}_PORT", "").strip()
            if raw:
                values[name] = int(raw)
        return cls(**values)


@dataclass(frozen=True, slots=True)
class ComposeStackInfo:
    """Where the running containerised stack answers, all on 127.0.0.1."""

    project: str
    run_dir: str
    api_url: str
    risk_url: str
    toxiproxy_url: str
    database_url: str
    redis_url: str
    metrics_urls: dict[str, str]
    containers: dict[str, str]
    seed: dict[str, Any] | None = None
    target: str = "compose"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (what ``RUN_DIR/stack.json`` holds)."""
        return asdict(self)


def compose_command() -> list[str]:
    """``docker compose`` when the v2 plugin answers, else ``docker-compose``."""
    override = os.environ.get("FAULTLINE_COMPOSE_CLI", "").split()
    if override:
        return override
    docker = shutil.which("docker")
    if docker is not None:
        probe = subprocess.run(
            [docker, "compose", "version"], capture_output=True, text=True, check=False
        )
        if probe.returncode == 0:
            return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    if legacy is not None:
        return [legacy]
    raise ComposeError("neither `docker compose` nor `docker-compose` is installed")


def docker_client(timeout: float = 30.0) -> Any:
    """A Docker SDK client for ``DOCKER_HOST`` (or the default socket), API version negotiated."""
    try:
        import docker
    except ModuleNotFoundError as exc:  # pragma: no cover - the drill extra installs it
        raise ComposeError("the `docker` package is needed: pip install 'faultline[drill]'") from exc
    return docker.from_env(version="auto", timeout=int(timeout))


def _strip_host_ports(config: dict[str, Any]) -> dict[str, Any]:
    for service in (config.get("services") or {}).values():
        if service.get("network_mode") == "host":
            service.pop("ports", None)
            service.pop("expose", None)
    return config


@dataclass
class ComposeStack:
    """Bring the containerised payment stack up, describe it, and take it down.

    ``files`` default to compose/docker-compose.yml, plus docker-compose.ci.yml when
    ``host_network`` is true (default: ``FAULTLINE_COMPOSE_HOST_NETWORK=1``). ``env`` is
    added to this process's environment for the compose CLI (image names,
    ``FAULTLINE_*_PORT``, ``PAYMENTS_BUGS``...). ``build``: build the app image first;
    default: only when ``FAULTLINE_APP_IMAGE`` is not in the engine yet.
    ``project`` defaults to ``FAULTLINE_COMPOSE_PROJECT``, else a fresh name.
    """

    run_dir: Path
    files: Sequence[Path] = ()
    project: str = ""
    env: Mapping[str, str] = field(default_factory=dict)
    host_network: bool | None = None
    build: bool | None = None
    seed_args: Sequence[str] | None = DEFAULT_SEED
    ready_timeout: float = 180.0
    _client: Any = field(default=None, init=False, repr=False)
    _resolved: Path | None = field(default=None, init=False, repr=False)
    _services: dict[str, dict[str, Any]] = field(default_factory=dict, init=False, repr=False)
    info: ComposeStackInfo | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.run_dir = Path(self.run_dir)
        environ = self._environ()
        if self.host_network is None:
            self.host_network = environ.get("FAULTLINE_COMPOSE_HOST_NETWORK") == "1"
        if not self.files:
            names = ["docker-compose.yml"] + (["docker-compose.ci.yml"] if self.host_network else [])
            self.files = [COMPOSE_DIR / n for n in names]
        if not self.project:
            self.project = environ.get("FAULTLINE_COMPOSE_PROJECT") or f"faultline-{uuid.uuid4().hex[:8]}"

    # ------------------------------------------------------------------ plumbing
    @property
    def client(self) -> Any:
        """The Docker SDK client (created on first use)."""
        if self._client is None:
            self._client = docker_client()
        return self._client

    def _environ(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update({k: str(v) for k, v in self.env.items()})
        return env

    def compose(self, *args: str, check: bool = True, timeout: float = 600.0) -> str:
        """Run the compose CLI on the resolved file (or the sources before it exists)."""
        files = [self._resolved] if self._resolved is not None else list(self.files)
        argv = [*compose_command(), "--project-name", self.project]
        for f in files:
            argv += ["--file", str(f)]
        argv += list(args)
        proc = subprocess.run(
            argv, env=self._environ(), capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and proc.returncode != 0:
            raise ComposeError(f"`{' '.join(argv[-len(args):])}` failed: {proc.stderr.strip()[-2000:]}")
        return proc.stdout

    def render(self) -> Path:
        """Merge the compose files into ``RUN_DIR/compose.resolved.yml`` (absolute paths)."""
        import yaml

        self.run_dir.mkdir(parents=True, exist_ok=True)
        config = _strip_host_ports(yaml.safe_load(self.compose("config")))
        self._services = dict(config.get("services") or {})
        path = self.run_dir / "compose.resolved.yml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        self._resolved = path
        return path

    @property
    def ports(self) -> ComposePorts:
        """The port settings the stack was rendered with."""
        return ComposePorts.from_env(self._environ())

    def containers(self) -> dict[str, Any]:
        """service name -> SDK container of this project (all states)."""
        found = self.client.containers.list(all=True, filters={"label": f"{PROJECT_LABEL}={self.project}"})
        return {c.labels.get(SERVICE_LABEL, c.name): c for c in found}

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> ComposeStackInfo:
        """Render, ``up -d``, wait until healthy, seed; writes ``RUN_DIR/stack.json``.
        On failure the logs are saved and the stack is taken down before the error
        propagates."""
        started = time.monotonic()
        self.render()
        try:
            self.compose("up", "--detach", *(["--build"] if self._needs_build() else ["--no-build"]),
                         timeout=self.ready_timeout + 600)
            self.wait_healthy()
            seed = self._seed() if self.seed_args is not None else None
        except BaseException:
            # Nothing half-started is left behind: logs first, then down.
            with contextlib.suppress(Exception):
                self.stop()
            raise
        self.info = self._describe(seed)
        (self.run_dir / "stack.json").write_text(json.dumps(self.info.to_dict(), indent=2))
        print(f"faultline: compose stack {self.project} up in {time.monotonic() - started:.1f}s",
              file=sys.stderr)
        return self.info

    def _needs_build(self) -> bool:
        if self.build is not None:
            return self.build
        image = self._environ().get("FAULTLINE_APP_IMAGE") or "faultline/payments:latest"
        try:
            self.client.images.get(image)
        except Exception:
            return True
        return False

    def wait_healthy(self, services: Sequence[str] | None = None, timeout: float | None = None) -> None:
        """Block until each service is healthy (or running, without a health check);
        one-shot services must have exited 0. Fails fast when a service died."""
        wanted = list(services) if services is not None else list(self._services)
        deadline = time.monotonic() + (timeout or self.ready_timeout)
        pending = set(wanted)
        while pending:
            by_service = self.containers()
            for name in sorted(pending):
                box = by_service.get(name)
                if box is None:
                    continue
                box.reload()
                state = box.attrs.get("State", {})
                status = state.get("Status")
                if name in ONE_SHOT:
                    if status == "exited":
                        if state.get("ExitCode") != 0:
                            raise ComposeError(self._died(name, box))
                        pending.discard(name)
                    continue
                if status in ("exited", "dead"):
                    raise ComposeError(self._died(name, box))
                health = (state.get("Health") or {}).get("Status")
                if status == "running" and health in (None, "healthy"):
                    pending.discard(name)
            if not pending:
                return
            if time.monotonic() > deadline:
                raise ComposeError(f"not healthy after {timeout or self.ready_timeout:.0f}s: {sorted(pending)}")
            time.sleep(0.5)

    def _died(self, name: str, box: Any) -> str:
        tail = box.logs(tail=30).decode(errors="replace")
        return f"service {name} exited ({box.attrs['State'].get('ExitCode')}); last log lines:\n{tail}"

    def _seed(self) -> dict[str, Any]:
        # In a one-off container of the app image: the seed matches the schema that
        # `migrate` applied, whatever Python the host has.
        out = self.compose("run", "--rm", "--no-deps", "-T", "migrate",
                           "python3", "-m", "payments.seed", *(self.seed_args or ()), timeout=180)
        start = out.find("{")
        if start < 0:
            raise ComposeError(f"seeding printed no JSON: {out[-2000:]}")
        return dict(json.loads(out[start:]))

    @property
    def database_url(self) -> str:
        """The primary through its published port (not through the proxy)."""
        return f"postgresql://faultline:faultline@127.0.0.1:{self.ports.postgres}/payments"

    def _describe(self, seed: dict[str, Any] | None) -> ComposeStackInfo:
        p = self.ports
        loop = "http://127.0.0.1"
        return ComposeStackInfo(
            project=self.project,
            run_dir=str(self.run_dir),
            api_url=f"{loop}:{p.api}",
            risk_url=f"{loop}:{p.risk}",
            toxiproxy_url=f"{loop}:{p.toxiproxy}",
            database_url=self.database_url,
            redis_url=f"redis://127.0.0.1:{p.redis}/0",
            metrics_urls={
                "api": f"{loop}:{p.api}/metrics",
                "relay": f"{loop}:{p.relay}/metrics",
                "worker-1": f"{loop}:{p.worker1}/metrics",
                "worker-2": f"{loop}:{p.worker2}/metrics",
                "risk": f"{loop}:{p.risk}/metrics",
            },
            containers={name: box.name for name, box in self.containers().items()},
            seed=seed,
        )

    def service_control(self) -> Any:
        """A ``faultline.faults.ServiceControl`` for this stack's containers (kill with a
        signal, pause/resume, start, restart), for the runner's ``ProcessNemesis``."""
        from faultline.faults._container import ContainerControl

        return ContainerControl(self.project, self.client)

    def recreate(self, service: str, env: Mapping[str, str]) -> None:
        """Recreate one service with environment overrides (e.g. ``PAYMENTS_BUGS``), leaving
        the others running; used to switch a deliberate bug on and off mid-session."""
        import yaml

        if self._resolved is None:
            raise ComposeError("recreate() before start()")
        old = self.containers().get(service)
        if old is not None:  # its log goes with the container: keep it
            logs = self.run_dir / "logs"
            logs.mkdir(parents=True, exist_ok=True)
            n = len(list(logs.glob(f"{service}.*.log"))) + 1
            (logs / f"{service}.{n}.log").write_bytes(old.logs(timestamps=True))
        config = yaml.safe_load(self._resolved.read_text())
        environment = config["services"][service].setdefault("environment", {})
        environment.update({k: str(v) for k, v in env.items()})
        self._resolved.write_text(yaml.safe_dump(config, sort_keys=False))
        self._services = dict(config["services"])
        self.compose("up", "--detach", "--no-deps", "--no-build", service)
        self.wait_healthy([service])

    def save_logs(self) -> Path:
        """Write each container's log (with timestamps) to ``RUN_DIR/logs/<service>.log``."""
        logs = self.run_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        try:
            boxes = self.containers()
        except Exception as exc:  # the engine may be gone; say so, never mask the real error
            (logs / "_error.txt").write_text(f"could not list containers: {exc}\n")
            return logs
        for name, box in boxes.items():
            try:
                data = box.logs(timestamps=True)
            except Exception as exc:
                data = f"<no log: {exc}>\n".encode()
            (logs / f"{name}.log").write_bytes(data)
        return logs

    def stop(self) -> None:
        """Save the logs, then ``down -v`` (containers, networks, volumes of this project)."""
        self.save_logs()
        self.compose("down", "--volumes", "--remove-orphans", "--timeout", "5", check=False)
        left = self.containers()
        for box in left.values():  # a container compose lost track of
            box.remove(force=True, v=True)

    def __enter__(self) -> ComposeStackInfo:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()
