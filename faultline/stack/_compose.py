"""The ``compose`` launcher: a system's stack as containers, from its compose files.

Everything specific to the system comes from the :class:`ComposeSpec` its profile gives:
the compose files, the one-shot services, the port settings and which of them answer
as the stack's entry, fault proxy and metrics, its own endpoints, the hops its proxy
config names, the command whose JSON output is the workload data, and the services
process faults may act on. ``ComposeStack(spec, run_dir=...)`` is then the same
:class:`~faultline.stack.Launcher` as the local one:

``start()`` merges the compose files into ``RUN_DIR/compose.resolved.yml`` (``compose
config``: variables interpolated, paths absolute), builds an image only when it is
missing and its Dockerfile is at hand, brings the project up with the ``docker compose``
CLI (the v2 plugin, else the ``docker-compose`` binary), waits through the Docker SDK
until every long-running service is healthy and every one-shot service has exited 0,
obtains the workload data (``RUN_DIR/stack.json``, mode 0600) and returns the
:class:`~faultline.stack.StackInfo`. ``kill``/``pause``/``resume``/``start_service``/
``restart`` are container operations (:mod:`faultline.stack._containers`). ``stop()``
heals, saves every container's log into ``RUN_DIR/logs/``, then ``down -v``.

Every published port is on 127.0.0.1, and a service listens inside its container on the
port it is published on, so URLs come from the port settings in both network modes: the
default bridge network, and host networking (the spec's ``host_network_files``,
``FAULTLINE_COMPOSE_HOST_NETWORK=1``). Under host networking the compose files'
``ports:`` are meaningless, and docker-compose v1 refuses them, so the resolved file drops
them for ``network_mode: host`` services, as the engine itself would.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from faultline.stack._compose_spec import ComposeError, ComposeSpec, OneOff
from faultline.stack._containers import (
    PROJECT_LABEL,
    SERVICE_LABEL,
    ContainerControl,
    docker_client,
)
from faultline.stack._embedded import LOOPBACK
from faultline.stack._launcher import StackInfo
from faultline.stack._local import write_private

__all__ = ["ComposeError", "ComposeSpec", "ComposeStack", "OneOff", "compose_command"]


def compose_command() -> list[str]:
    """``docker compose`` when the v2 plugin answers, else ``docker-compose``
    (``FAULTLINE_COMPOSE_CLI`` forces one)."""
    override = os.environ.get("FAULTLINE_COMPOSE_CLI", "").split()
    if override:
        return override
    docker = shutil.which("docker")
    if docker is not None:
        probe = subprocess.run([docker, "compose", "version"], capture_output=True,
                               text=True, check=False)
        if probe.returncode == 0:
            return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    if legacy is not None:
        return [legacy]
    raise ComposeError("neither `docker compose` nor `docker-compose` is installed")


def _strip_host_ports(config: dict[str, Any]) -> dict[str, Any]:
    for service in (config.get("services") or {}).values():
        if service.get("network_mode") == "host":
            service.pop("ports", None)
            service.pop("expose", None)
    return config


def _last_json_object(text: str) -> dict[str, Any] | None:
    """The JSON object that ends ``text`` (a tool may print lines before it)."""
    decoder = json.JSONDecoder()
    for match in reversed(list(re.finditer(r"^\s*\{", text, flags=re.MULTILINE))):
        try:
            value, end = decoder.raw_decode(text, match.end() - 1)
        except ValueError:
            continue
        if isinstance(value, dict) and not text[end:].strip():
            return value
    return None


def _stderr(msg: str) -> None:
    print(f"faultline: {msg}", file=sys.stderr, flush=True)


class ComposeStack:
    """A system's stack as containers of one compose project (docs/contracts.md §3).

    ``with ComposeStack(spec, run_dir=d) as info:`` starts it and always stops it.
    ``env`` is added to the compose CLI's environment (image names, port settings...).
    ``host_network`` adds the spec's host-network files (default:
    ``FAULTLINE_COMPOSE_HOST_NETWORK=1``). ``build``: build images first; default: only
    an image missing from the engine whose Dockerfile is at hand. ``project`` defaults
    to ``FAULTLINE_COMPOSE_PROJECT``, else a fresh name. A stopped ComposeStack does not
    start again: make a new one.
    """

    controls = frozenset({"kill", "pause", "restart"})

    def __init__(self, spec: ComposeSpec, *, run_dir: str | os.PathLike[str],
                 project: str = "", env: Mapping[str, str] | None = None,
                 host_network: bool | None = None, build: bool | None = None,
                 proxy_seed: int | None = None, ready_timeout: float = 180.0,
                 client: Any = None, log: Callable[[str], None] | None = None) -> None:
        self.spec = spec
        self.run_dir = Path(run_dir).resolve()
        self.extra_env = {k: str(v) for k, v in (env or {}).items()}
        environ = self._environ()
        self.host_network = (environ.get("FAULTLINE_COMPOSE_HOST_NETWORK") == "1"
                             if host_network is None else host_network)
        if self.host_network and not spec.host_network_files:
            raise ComposeError(f"system {spec.system} has no compose files for host networking")
        self.files = [*spec.files, *(spec.host_network_files if self.host_network else ())]
        slug = re.sub(r"[^a-z0-9_-]", "", spec.system.lower()) or "stack"
        self.project = (project or environ.get("FAULTLINE_COMPOSE_PROJECT")
                        or f"faultline-{slug}-{uuid.uuid4().hex[:8]}")
        self.build = build
        self.proxy_seed = proxy_seed
        self.ready_timeout = ready_timeout
        self.log = log or _stderr
        self._client = client
        self._control: ContainerControl | None = None
        self._resolved: Path | None = None
        self._services: dict[str, dict[str, Any]] = {}
        self._info: StackInfo | None = None
        self._stopped = False
        self.startup_seconds: float | None = None

    # ------------------------------------------------------------------ plumbing
    @property
    def client(self) -> Any:
        """The Docker SDK client (created on first use)."""
        if self._client is None:
            self._client = docker_client()
        return self._client

    @property
    def control(self) -> ContainerControl:
        """Process faults on this project's containers."""
        if self._control is None:
            self._control = ContainerControl(self.project, self.client,
                                             aliases=self.spec.containers,
                                             ready_timeout=self.ready_timeout, log=self.log)
        return self._control

    def _environ(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update({k: str(v) for k, v in self.spec.env.items()})
        env.update(self.extra_env)
        return env

    @property
    def ports(self) -> dict[str, int]:
        """The port settings the stack runs with."""
        return self.spec.read_ports(self._environ())

    def compose(self, *args: str, check: bool = True, timeout: float = 600.0) -> str:
        """Run the compose CLI on the resolved file (or the sources before it exists)."""
        files = [self._resolved] if self._resolved is not None else list(self.files)
        argv = [*compose_command(), "--project-name", self.project]
        for f in files:
            argv += ["--file", str(f)]
        argv += list(args)
        try:
            proc = subprocess.run(argv, env=self._environ(), capture_output=True, text=True,
                                  timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise ComposeError(f"`{' '.join(args)}` did not finish in {timeout:.0f}s") from None
        if check and proc.returncode != 0:
            raise ComposeError(f"`{' '.join(args)}` failed: {proc.stderr.strip()[-2000:]}")
        return proc.stdout

    def render(self) -> Path:
        """Merge the compose files into ``RUN_DIR/compose.resolved.yml``."""
        import yaml

        missing = [str(f) for f in self.files if not Path(f).is_file()]
        if missing:
            raise ComposeError(f"compose file(s) of {self.spec.system} not found: "
                               f"{', '.join(missing)}")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        config = _strip_host_ports(yaml.safe_load(self.compose("config")))
        self._services = dict(config.get("services") or {})
        path = self.run_dir / "compose.resolved.yml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        self._resolved = path
        return path

    def containers(self) -> dict[str, Any]:
        """compose service name -> SDK container of this project (all states)."""
        found = self.client.containers.list(
            all=True, filters={"label": f"{PROJECT_LABEL}={self.project}"})
        return {c.labels.get(SERVICE_LABEL, c.name): c for c in found}

    # ------------------------------------------------------------------ start
    def start(self) -> StackInfo:
        """Render, build what is missing, ``up -d``, wait until healthy, obtain the
        workload data; returns where the stack answers. On failure the logs are saved
        and the stack is taken down before the error propagates."""
        if self._info is not None:
            return self._info
        if self._stopped:
            raise ComposeError("this ComposeStack was stopped; make a new one to start again")
        began = time.monotonic()
        try:
            self.render()
            build = self._needs_build()
            self.compose("up", "--detach", "--build" if build else "--no-build",
                         timeout=self.ready_timeout + (900 if build else 120))
            self.wait_healthy()
            data = self._workload_data()
            write_private(self.run_dir / "stack.json", json.dumps(data, indent=2))
            self._info = self._describe(data)
            self._seed_proxy()
        except BaseException:
            # Nothing half-started is left behind: logs first, then down.
            with contextlib.suppress(Exception):
                self.stop()
            raise
        self.startup_seconds = time.monotonic() - began
        self.log(f"compose stack {self.project} up in {self.startup_seconds:.1f}s")
        return self._info

    def _needs_build(self) -> bool:
        """Build when asked, else when an image with a build section is missing; an
        image that is missing and cannot be built here (an installed package ships no
        source tree) is an error that says what to do."""
        if self.build is not None:
            return self.build
        need = False
        for name, service in self._services.items():
            build, image = service.get("build"), service.get("image")
            if not build or not image:
                continue
            try:
                self.client.images.get(image)
                continue
            except Exception:
                pass
            context = Path(build if isinstance(build, str) else build.get("context", "."))
            dockerfile = context / ("Dockerfile" if isinstance(build, str)
                                    else build.get("dockerfile") or "Dockerfile")
            if not dockerfile.is_file():
                raise ComposeError(f"image {image} (service {name}) is not in the engine and "
                                   f"cannot be built here: {dockerfile} does not exist. Build "
                                   "it from a source checkout, or point the compose file's "
                                   "image variable at one the engine has")
            need = True
        return need

    def wait_healthy(self, services: Sequence[str] | None = None,
                     timeout: float | None = None) -> None:
        """Block until each service is healthy (or running, without a health check);
        one-shot services must have exited 0. Fails fast when a service died."""
        limit = timeout or self.ready_timeout
        deadline = time.monotonic() + limit
        pending = set(services if services is not None else self._services)
        while pending:
            by_service = self.containers()
            for name in sorted(pending):
                box = by_service.get(name)
                if box is None:
                    continue
                box.reload()
                state = box.attrs.get("State", {})
                status = state.get("Status")
                if name in self.spec.one_shot:
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
                raise ComposeError(f"not healthy after {limit:.0f}s: {sorted(pending)}")
            time.sleep(0.5)

    def _died(self, name: str, box: Any) -> str:
        tail = box.logs(tail=30).decode(errors="replace")
        return (f"service {name} exited ({box.attrs['State'].get('ExitCode')}); "
                f"last log lines:\n{tail}")

    def _workload_data(self) -> dict[str, Any]:
        # In a one-off container of the system's own image: the tool matches what the
        # stack runs, whatever Python the host has.
        one = self.spec.workload
        if one is None:
            return {}
        out = self.compose("run", "--rm", "--no-deps", "-T", one.service, *one.argv,
                           timeout=one.timeout)
        data = _last_json_object(out)
        if data is None:
            raise ComposeError(f"`{' '.join(one.argv)}` in {one.service} printed no JSON "
                               f"object: {out[-1500:]!r}")
        return data

    def _seed_proxy(self) -> None:
        """The fault proxy's decisions follow ``proxy_seed`` (a real Toxiproxy has no
        seed: it is left as it is)."""
        info = self._info
        if self.proxy_seed is None or info is None or not info.proxy_url:
            return
        from faultline.proxy.client import ProxyClient

        # Any: set_seed is Faultline's own endpoint (the proxy's client gains it in the
        # proxy work); a real Toxiproxy answers 404, and an old client has no method
        client: Any = ProxyClient(info.proxy_url, timeout=5.0)
        with contextlib.suppress(Exception):
            client.set_seed(self.proxy_seed)

    def _describe(self, workload_data: dict[str, Any]) -> StackInfo:
        spec, ports = self.spec, self.ports

        def url(name: str) -> str:
            return f"http://{LOOPBACK}:{ports[name]}"

        return StackInfo(
            system=spec.system,
            target="compose",
            base_url=url(spec.entry),
            proxy_url=url(spec.proxy) if spec.proxy else None,
            hops=dict(spec.hops) if spec.proxy else {},
            services=list(spec.services),
            metrics_urls={svc: url(port) + spec.metrics_path
                          for svc, port in spec.metrics.items()},
            endpoints=dict(spec.endpoints(ports)),
            workload_data=workload_data,
            pids=self.pids(),
            run_dir=str(self.run_dir),
        )

    # ------------------------------------------------------------------ info
    def info(self) -> StackInfo:
        """Where the running stack answers (``StackError`` before ``start()``)."""
        if self._info is None:
            raise ComposeError("the compose stack is not running")
        self._info.pids = self.pids()
        return self._info

    def pids(self) -> dict[str, int]:
        """Service -> host pid of its container's main process, for those running."""
        out: dict[str, int] = {}
        with contextlib.suppress(Exception):
            for service in self.spec.services:
                box = self.control.container(service)
                box.reload()
                pid = int((box.attrs.get("State") or {}).get("Pid") or 0)
                if pid:
                    out[service] = pid
        return out

    # ------------------------------------------------------------------ process faults
    def _check(self, service: str) -> None:
        if self._info is None:
            raise ComposeError("the compose stack is not running")
        if service not in self.spec.services:
            raise ComposeError(f"unknown service {service!r}; expected one of "
                               f"{', '.join(self.spec.services)}")

    def kill(self, service: str, sig: int = signal.SIGKILL) -> int:
        """``docker kill -s SIG``; returns once an ending signal has ended the container.
        Returns the processes reached (0 when it was not running)."""
        self._check(service)
        return self.control.kill(service, sig)

    def pause(self, service: str) -> int:
        """Freeze the container (cgroup freezer, SIGSTOP fallback); processes frozen."""
        self._check(service)
        return self.control.pause(service)

    def resume(self, service: str) -> int:
        """Thaw the container; processes thawed."""
        self._check(service)
        return self.control.resume(service)

    def start_service(self, service: str) -> None:
        """Start the container again; returns once it is healthy."""
        self._check(service)
        self.control.start(service)

    def restart(self, service: str) -> None:
        """``docker restart``; returns once it is healthy again."""
        self._check(service)
        self.control.restart(service)

    # ------------------------------------------------------------------ stop
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

    def heal(self) -> list[str]:
        """Remove every toxic, re-enable every proxy, thaw and start what was faulted."""
        errors: list[str] = []
        if self._info is not None and self._info.proxy_url:
            from faultline.proxy.client import ProxyClient

            try:
                ProxyClient(self._info.proxy_url, timeout=3.0).reset()
            except Exception as exc:
                errors.append(f"proxy reset: {exc}")
        if self._control is not None:
            errors += self._control.heal()
        return errors

    def stop(self) -> None:
        """Heal, save the logs, then ``down -v`` (containers, networks, volumes of this
        project). Idempotent; safe after a failed start."""
        if self._stopped:
            return
        self._stopped = True
        if self._resolved is None:  # nothing was rendered, so nothing was started
            return
        try:
            with contextlib.suppress(Exception):
                self.heal()
            self.save_logs()
            self.compose("down", "--volumes", "--remove-orphans", "--timeout", "5",
                         check=False)
            with contextlib.suppress(Exception):
                for box in self.containers().values():  # one compose lost track of
                    box.remove(force=True, v=True)
        finally:
            self._info = None

    def __enter__(self) -> StackInfo:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
