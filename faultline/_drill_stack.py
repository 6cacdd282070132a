"""How a drill gets its stack: the launchers of ``faultline.stack`` behind one shape.

A :class:`DrillStack` is what the runner needs: where the api, the databases, the fault
proxy and the metrics answer, the seed (contracts §4), a :class:`ServiceControl` for
process faults, and ``stop()``. ``open_stack`` builds one for ``local`` (the launcher in
``faultline.stack``), ``compose`` (``ComposeStack`` + the container nemesis) and
``external`` (URLs from the environment; no process faults).

It also keeps the run registry (``runs/.active/<pid>.json``): what a run started, so
that the next run can sweep what a SIGKILLed one left behind.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["DrillStack", "StackError", "open_stack", "register_run", "sweep_leftovers",
           "unregister_run"]


#: a registry entry older than this (seconds) names pids that may have been reused
STALE_AFTER = 24 * 3600.0


class StackError(RuntimeError):
    """The stack could not be started or attached (the message says why)."""


@dataclass
class DrillStack:
    """A running stack as the drill sees it (every URL on 127.0.0.1)."""

    api_url: str
    database_url: str
    redis_url: str
    proxy_url: str | None
    metrics_urls: dict[str, str]
    seed: dict[str, Any]
    services: Any = None
    stop: Callable[[], None] = lambda: None
    pids: list[int] = field(default_factory=list)
    target: str = "local"


def _get(obj: Any, *names: str, default: Any = None) -> Any:
    for name in names:
        if isinstance(obj, dict) and name in obj:
            return obj[name]
        if hasattr(obj, name):
            return getattr(obj, name)
    return default


def _construct(cls: Any, **kwargs: Any) -> Any:
    """``cls(**kwargs)`` with only the keyword arguments it takes."""
    try:
        params = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return cls(**kwargs)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return cls(**kwargs)
    return cls(**{k: v for k, v in kwargs.items() if k in params})


def _describe(info: Any, control: Any, stop: Callable[[], None], target: str) -> DrillStack:
    seed = _get(info, "seed", default=None) or {}
    api = _get(info, "api_url", "api")
    if not api:
        raise StackError("the launcher did not say where the api answers")
    metrics = dict(_get(info, "metrics_urls", default=None) or {})
    metrics.setdefault("api", api.rstrip("/") + "/metrics")
    pids: list[int] = []
    with contextlib.suppress(Exception):
        pids = [int(p) for p in (_get(info, "pids", default=None) or {}).values()]
    return DrillStack(
        api_url=api,
        database_url=_get(info, "database_url", "postgres_url"),
        redis_url=_get(info, "redis_url"),
        proxy_url=_get(info, "toxiproxy_url", "proxy_url"),
        metrics_urls=metrics,
        seed=dict(seed),
        services=control,
        stop=stop,
        pids=pids,
        target=target,
    )


class _ContainerControl:
    """:class:`faultline.faults.ServiceControl` on a compose project's containers."""

    def __init__(self, nemesis: Any) -> None:
        self.nemesis = nemesis

    def kill(self, service: str, sig: int = signal.SIGKILL) -> None:
        self.nemesis.kill(service, signal=sig)

    def pause(self, service: str) -> None:
        self.nemesis.pause(service)

    def resume(self, service: str) -> None:
        self.nemesis.unpause(service)

    def start(self, service: str) -> None:
        self.nemesis.start(service)

    def restart(self, service: str) -> None:
        self.nemesis.restart(service)


def _local(run_dir: Path, bugs: list[str]) -> DrillStack:
    import faultline.stack as stack_pkg

    cls = getattr(stack_pkg, "LocalStack", None)
    if cls is None:
        with contextlib.suppress(ImportError):
            from faultline.stack import _local as local_mod

            cls = getattr(local_mod, "LocalStack", None)
    if cls is None:
        raise StackError("the local launcher (faultline.stack.LocalStack) is not available")
    launcher = _construct(cls, run_dir=run_dir, bugs=bugs)
    try:
        info = launcher.start()
    except BaseException:
        with contextlib.suppress(Exception):
            launcher.stop()
        raise
    return _describe(info, launcher, launcher.stop, "local")


def _compose(run_dir: Path, bugs: list[str]) -> DrillStack:
    from faultline.stack._compose import ComposeStack

    env = {"PAYMENTS_BUGS": ",".join(bugs)} if bugs else {}
    launcher = ComposeStack(run_dir=run_dir, env=env)
    info = launcher.start()
    try:
        if hasattr(launcher, "service_control"):
            control = launcher.service_control()
        else:
            from faultline.faults._container import ContainerNemesis

            control = _ContainerControl(ContainerNemesis(project=info.project))
    except BaseException:
        launcher.stop()
        raise
    return _describe(info, control, launcher.stop, "compose")


def _external(run_dir: Path, bugs: list[str]) -> DrillStack:
    if bugs:
        raise StackError("--bugs needs a stack the drill starts (local or compose)")
    import faultline.stack as stack_pkg

    launcher_cls = getattr(stack_pkg, "ExternalStack", None)
    if launcher_cls is not None:
        try:
            attached = launcher_cls().start()
        except Exception as exc:
            raise StackError(f"external stack: {exc}") from exc
        return _describe(attached, None, lambda: None, "external")
    env = os.environ
    path = env.get("FAULTLINE_STACK_JSON")
    data: dict[str, Any] = json.loads(Path(path).read_text()) if path else {}
    info: dict[str, Any] = {
        "api_url": env.get("FAULTLINE_API_URL", data.get("api_url")),
        "database_url": env.get("FAULTLINE_DATABASE_URL", data.get("database_url")),
        "redis_url": env.get("FAULTLINE_REDIS_URL", data.get("redis_url")),
        "toxiproxy_url": env.get("TOXIPROXY_URL", data.get("toxiproxy_url")),
        "metrics_urls": data.get("metrics_urls") or {},
        "seed": data.get("seed"),
    }
    missing = [k for k in ("api_url", "database_url", "redis_url", "seed") if not info.get(k)]
    if missing:
        raise StackError("an external stack needs FAULTLINE_STACK_JSON (a stack.json) or "
                         f"FAULTLINE_API_URL/..._URL; missing: {', '.join(missing)}")
    return _describe(info, None, lambda: None, "external")


def open_stack(target: str, run_dir: Path, bugs: list[str]) -> DrillStack:
    """Start (or attach to) the stack of ``target``."""
    makers = {"local": _local, "compose": _compose, "external": _external}
    if target not in makers:
        raise StackError(f"unknown target {target!r}; expected local, compose or external")
    return makers[target](run_dir, bugs)


# ------------------------------------------------------------------ run registry


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def register_run(registry: Path, **what: Any) -> Path:
    """Write ``registry/<pid>.json`` with what this run started (updated as it goes)."""
    registry.mkdir(parents=True, exist_ok=True)
    path = registry / f"{os.getpid()}.json"
    current = json.loads(path.read_text()) if path.exists() else {"runner_pid": os.getpid()}
    current.update(what)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(current, default=str))
    tmp.replace(path)
    return path


def unregister_run(registry: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        (registry / f"{os.getpid()}.json").unlink()


def sweep_leftovers(registry: Path, log: Callable[[str], None] = lambda m: None) -> list[str]:
    """Clean up after runs whose runner died: heal their fault proxy, end their Locust and
    stack processes, and let the launcher sweep its own pid files. Returns what was done."""
    done: list[str] = []
    for entry in sorted(registry.glob("*.json")) if registry.is_dir() else []:
        try:
            data = json.loads(entry.read_text())
        except (OSError, ValueError):
            entry.unlink(missing_ok=True)
            continue
        runner = int(data.get("runner_pid", 0))
        if runner and runner != os.getpid() and _alive(runner):
            continue
        proxy = data.get("proxy_url")
        if proxy:
            with contextlib.suppress(Exception):
                from faultline.faults import heal_proxy
                from faultline.proxy.client import ProxyClient

                undone = heal_proxy(ProxyClient(proxy, timeout=2.0))
                if undone:
                    done.append(f"healed {len(undone)} fault(s) on {proxy}")
        groups = [int(g) for g in data.get("process_groups", [])]
        pids = [int(p) for p in data.get("pids", [])]
        if time.time() - entry.stat().st_mtime > STALE_AFTER:
            groups, pids = [], []  # after a reboot those numbers belong to someone else
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pgid in groups:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pgid, sig)
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, sig)
            if sig == signal.SIGTERM and (groups or pids):
                time.sleep(1.0)
        if groups or pids:
            done.append(f"ended {len(groups)} process group(s) and {len(pids)} process(es) of "
                        f"run {data.get('run_dir', runner)}")
        entry.unlink(missing_ok=True)
    with contextlib.suppress(Exception):
        import faultline.stack as stack_pkg

        sweep = getattr(stack_pkg, "sweep", None) or getattr(stack_pkg, "sweep_leftovers", None)
        if callable(sweep):
            result = sweep()
            if result:
                done.append(f"stack launcher swept: {result}")
    for line in done:
        log(line)
    return done
