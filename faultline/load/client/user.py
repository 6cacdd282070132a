"""The Jepsen client for Locust: a base user that records every operation it performs.

Run by ``faultline.load`` as a subprocess (never imported by the drill runner: Locust
monkey-patches the process with gevent). Everything comes from the environment:

=============================  ==========================================================
``FAULTLINE_LOAD``             the scenario's ``load`` as JSON (profile, users, duration,
                               rate, mix, spike, params)
``FAULTLINE_STACK``            path of the workload data (``RUN_DIR/stack.json``: what the
                               system's setup produced — accounts, API keys)
``FAULTLINE_HISTORY_DIR``      where this process writes ``history-<pid>.jsonl``;
                               unset on a remote worker, whose lines go to the master
``FAULTLINE_SEED``             seeds every user's choices
``FAULTLINE_RUN_TAG``          makes idempotency keys unique per run (a replay on a
                               shared stack must not find the first run's keys)
``FAULTLINE_CLIENT_TIMEOUT``   seconds before a request is abandoned (``info``), 2.0
``FAULTLINE_PARENT_PID``       the drill runner; when it dies, this load stops itself
``FAULTLINE_PROBE``            ``1`` for the steady-state probe (plain traffic only)
``FAULTLINE_WORKER_READY``     (remote worker) a file created once the master answered
``FAULTLINE_CLOCK_SKEW_NS``    TEST ONLY: added to this process's history clock
=============================  ==========================================================

A system's locustfile subclasses :class:`JepsenUser` and gives one method per operation
of its workload (``def transfer(self): ...``), each calling :meth:`JepsenUser.call`; the
operation to run next is drawn from the scenario's mix with the user's seeded RNG, so a
replay with the same seed makes the same choices in the same order (timing aside).

Distributed (``faultline run --master`` + ``faultline load-worker`` elsewhere): the master
runs the shape and no users; it hands the drill's settings to its workers with every
spawn message (a Locust custom argument, ``--faultline-drill``), and a remote worker
sends its history to the master (``_relay.py``), which writes it on its own clock.

With ``rate`` set, users pace themselves on a fixed schedule (an open model) and the
latency of an operation is measured from the moment it *should* have started, so a
stalled server shows up in the tail instead of slowing the clients down (coordinated
omission).
"""

from __future__ import annotations

import errno
import itertools
import json
import logging
import os
import random
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gevent
from locust import LoadTestShape, events, task
from locust.contrib.fasthttp import FastHttpUser

from faultline.history import HistoryLog
from faultline.load.client._relay import install_master, install_worker
from faultline.load.client._shapes import ShapeSpec, users_at
from faultline.load.client._stats import install_stats_trim

__all__ = ["DRILL", "DrillSettings", "DrillShape", "JepsenUser", "Outcome"]


def _env_json(name: str, default: Any) -> Any:
    raw = os.environ.get(name)
    return json.loads(raw) if raw else default


class DrillSettings:
    """What the users need from the drill: from the environment, or, on a remote worker,
    from the master (:meth:`to_dict` travels in Locust's spawn message)."""

    def __init__(self, load: dict[str, Any], seed: int = 0, timeout: float = 2.0,
                 data: dict[str, Any] | None = None, run_tag: str = "", probe: bool = False
                 ) -> None:
        self.load = load
        self.shape = ShapeSpec.from_load(load)
        self.seed = seed
        self.timeout = timeout
        self.data = dict(data or {})
        self.run_tag = run_tag
        self.probe = probe
        self.mix = {k: float(v) for k, v in (load.get("mix") or {}).items() if float(v) > 0}
        self.rate = load.get("rate")
        #: the workload's own knobs (``load.params`` of the scenario)
        self.params: dict[str, Any] = dict(load.get("params") or {})

    @classmethod
    def from_env(cls) -> DrillSettings:
        stack = os.environ.get("FAULTLINE_STACK")
        return cls(
            load=_env_json("FAULTLINE_LOAD", {"profile": "steady", "users": 2, "duration": 10}),
            seed=int(os.environ.get("FAULTLINE_SEED", "0")),
            timeout=float(os.environ.get("FAULTLINE_CLIENT_TIMEOUT", "2.0")),
            data=json.loads(Path(stack).read_text()) if stack else {},
            run_tag=os.environ.get("FAULTLINE_RUN_TAG", ""),
            probe=os.environ.get("FAULTLINE_PROBE") == "1",
        )

    def to_dict(self) -> dict[str, Any]:
        return {"load": self.load, "seed": self.seed, "timeout": self.timeout,
                "data": self.data, "run_tag": self.run_tag, "probe": self.probe}


DRILL = DrillSettings.from_env()
HISTORY_DIR = os.environ.get("FAULTLINE_HISTORY_DIR")
HISTORY = HistoryLog(HISTORY_DIR or ".")
_user_numbers = itertools.count()
#: when this process spawned its first user; no operation starts after
#: ``_started + duration``, and the shape ends a client timeout later, so Locust never
#: has to kill a user in the middle of a request
_started: list[float] = []
#: seconds without a heartbeat of the master before a remote worker gives up
MASTER_SILENCE = 15.0
#: requests of this process's users in flight now (the shape ends once the load is over
#: and none is left, instead of always waiting a whole client timeout)
_inflight = [0]


def _is_remote_worker(environment: Any) -> bool:
    """A Locust worker that cannot write into the run's history directory."""
    from locust.runners import WorkerRunner

    return isinstance(environment.runner, WorkerRunner) and not HISTORY_DIR


def _worker_index(environment: Any) -> int:
    """0 for a single process; the master numbers its workers (forked or remote)."""
    return max(0, int(getattr(environment.runner, "worker_index", 0) or 0))


def _process_prefix(environment: Any) -> str:
    """Unique per process across machines (the worker index is unique per master)."""
    index = _worker_index(environment)
    if _is_remote_worker(environment):
        host = "".join(c if c.isalnum() else "_" for c in socket.gethostname())[:32]
        return f"w{index}-{host}-p{os.getpid()}"
    return f"w{index}-p{os.getpid()}"


@dataclass(slots=True)
class Outcome:
    """What one operation ended as: ``ok``, ``fail`` or ``info``, and the answer."""

    type: str
    status: int | None
    body: Any


class JepsenUser(FastHttpUser):
    """A client of the system under test that records a Jepsen history.

    Subclasses define one method per operation name of their workload; ``self.rng`` is
    this user's seeded RNG (use it for every choice), ``self.data`` the workload data,
    ``self.settings`` the drill. :meth:`call` performs and records one request.
    """

    abstract = True
    network_timeout = DRILL.timeout
    connection_timeout = DRILL.timeout
    max_retries = 0

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        if not _started:
            _started.append(time.monotonic())
        self.number = next(_user_numbers)
        self.process = f"{_process_prefix(environment)}-u{self.number}"
        self.rng = random.Random(f"{DRILL.seed}/{_worker_index(environment)}/{self.number}")
        self.settings = DRILL
        self.data = DRILL.data
        self._keys = itertools.count()
        self.ops = list(DRILL.mix)
        self.weights = [DRILL.mix[o] for o in self.ops]
        users = max(DRILL.shape.users, 1)
        self.interval = users / float(DRILL.rate) if DRILL.rate else None
        self.next_at = time.monotonic()
        self.late = 0.0

    # ------------------------------------------------------------ choices
    def new_key(self, prefix: str = "k") -> str:
        """A fresh idempotency key: drawn from the seeded RNG (a replay draws the same
        ones), tagged with the run so that two runs on one stack never share a key."""
        drawn = self.rng.getrandbits(64)
        return f"{prefix}-{drawn:016x}-{next(self._keys)}{'-' + DRILL.run_tag if DRILL.run_tag else ''}"

    # ------------------------------------------------------------ pacing
    def wait_time(self) -> float:
        if self.interval is None:
            return self.rng.uniform(0.05, 0.15)
        self.next_at += self.interval
        return max(0.0, self.next_at - time.monotonic())

    # ------------------------------------------------------------ recording
    def classify(self, status: int | None, error: BaseException | None) -> str:
        """``ok`` / ``fail`` / ``info`` of one HTTP answer (override for other contracts):
        2xx happened; 4xx was refused; a refused connection never reached the server;
        anything else (5xx, a timeout, a reset) may or may not have happened."""
        if status is None:
            refused = isinstance(error, ConnectionRefusedError) or (
                isinstance(error, OSError) and error.errno == errno.ECONNREFUSED)
            return "fail" if refused else "info"
        if 200 <= status < 300:
            return "ok"
        if 400 <= status < 500:
            return "fail"
        return "info"

    def call(self, f: str, method: str, path: str, *, key: str | None = None,
             value: dict[str, Any] | None = None, body: Any = None,
             headers: dict[str, str] | None = None, process: str | None = None,
             keep_body: bool = True) -> Outcome:
        """Perform one request and record it (``invoke``, then its completion)."""
        proc = process or self.process
        HISTORY.write({"type": "invoke", "process": proc, "f": f, "key": key, "value": value})
        started = time.monotonic()
        # with a constant arrival rate, the first call of a task also counts the time it
        # waited past its slot (coordinated omission)
        late, self.late = self.late, 0.0
        _inflight[0] += 1
        try:
            kind, status, data, error = self._send(method, path, headers or {}, body, f,
                                                   keep_body)
        except BaseException as exc:  # GreenletExit when Locust stops a user mid-request
            HISTORY.write({"type": "info", "process": proc, "f": f, "key": key, "value": value,
                           "status": None, "body": None, "error": f"stopped: {type(exc).__name__}",
                           "latency_ms": round((time.monotonic() - started) * 1000, 3)})
            raise
        finally:
            _inflight[0] -= 1
        service_ms = (time.monotonic() - started) * 1000
        line: dict[str, Any] = {
            "type": kind, "process": proc, "f": f, "key": key, "value": value,
            "status": status, "body": data, "error": error,
            "latency_ms": round(service_ms + late * 1000, 3),
        }
        if late:
            line["service_ms"] = round(service_ms, 3)
        HISTORY.write(line)
        return Outcome(kind, status, data)

    def _send(self, method: str, path: str, headers: dict[str, str], body: Any, name: str,
              keep_body: bool) -> tuple[str, int | None, Any, str | None]:
        data: Any = None
        error: str | None = None
        with self.client.request(method, path, json=body, headers=headers, name=name,
                                 catch_response=True) as resp:
            status = resp.status_code or None
            exc = getattr(resp, "error", None) if status is None else None
            kind = self.classify(status, exc)
            if status is None:
                error = type(exc).__name__ if exc is not None else "no_response"
                resp.failure(error)
            else:
                if keep_body:
                    try:
                        data = resp.json()
                    except Exception:  # a non-JSON answer: keep the status only
                        data = None
                if kind == "info":
                    resp.failure(f"HTTP {status}")
                else:
                    resp.success()  # a refusal is a correct answer, not a load error
        return kind, status, data, error

    @task
    def operate(self) -> None:
        """One operation, chosen by the scenario's mix (seeded per user)."""
        if time.monotonic() >= _started[0] + DRILL.shape.duration:
            gevent.sleep(0.25)  # the load is over: let requests in flight finish
            return
        if not self.ops:
            gevent.sleep(0.25)
            return
        op = self.rng.choices(self.ops, self.weights)[0]
        if self.interval is not None:
            self.late = max(0.0, time.monotonic() - self.next_at)
        getattr(self, op)()


class DrillShape(LoadTestShape):
    """The scenario's profile (:mod:`faultline.load.client._shapes`)."""

    def tick(self) -> tuple[int, float] | None:
        from locust.runners import MasterRunner

        t = float(self.get_run_time())  # type: ignore[no-untyped-call]
        shape = DRILL.shape
        users = users_at(shape, min(t, shape.duration - 1e-3))
        if users is None or t >= shape.duration + DRILL.timeout + 1.0:
            return None
        # the load is over and no request of ours is in flight: end now (a master runs
        # no users itself and cannot see its workers' requests: it waits the grace)
        over = t >= shape.duration + 0.1 and _started and (
            time.monotonic() >= _started[0] + shape.duration)
        if over and _inflight[0] == 0 and not isinstance(self.runner, MasterRunner):
            return None
        return users, max(shape.spawn_rate, 1.0) if users <= shape.users else float(users)


def _watch_parent(environment: Any) -> None:
    parent = int(os.environ.get("FAULTLINE_PARENT_PID", "0") or 0)
    if not parent:
        return
    while True:
        gevent.sleep(1.0)
        try:
            os.kill(parent, 0)
        except ProcessLookupError:
            # the drill runner is gone (SIGKILL): no orphan load may keep hammering
            HISTORY.close()
            if environment.runner is not None:
                environment.runner.quit()
            gevent.sleep(2.0)
            os._exit(0)
        except PermissionError:
            pass


def _watch_master(environment: Any) -> None:
    runner = environment.runner
    while True:
        gevent.sleep(1.0)
        last = runner.last_heartbeat_timestamp
        if last is not None and time.time() - last > MASTER_SILENCE:
            logging.error("faultline: no heartbeat from the Locust master for %gs; quitting",
                          MASTER_SILENCE)
            environment.process_exit_code = 1
            runner.quit()
            return


@events.init_command_line_parser.add_listener  # type: ignore[untyped-decorator]
def _on_parser(parser: Any) -> None:
    parser.add_argument("--faultline-drill", default="", include_in_web_ui=False,
                        help="set by the master: the drill's settings for remote workers")


@events.init.add_listener  # type: ignore[untyped-decorator]
def _on_init(environment: Any, **_kw: Any) -> None:
    from locust.runners import MasterRunner

    gevent.spawn(_watch_parent, environment)
    install_stats_trim(environment)  # Locust's per-second counters grow with the run
    runner = environment.runner
    if isinstance(runner, MasterRunner):
        # custom arguments ride along with every spawn message to the workers
        environment.parsed_options.faultline_drill = json.dumps(DRILL.to_dict())
        if HISTORY_DIR:
            install_master(environment, Path(HISTORY_DIR))
    elif _is_remote_worker(environment):
        install_worker(environment, HISTORY)
        gevent.spawn(_watch_master, environment)
        ready = os.environ.get("FAULTLINE_WORKER_READY")
        if ready:
            Path(ready).write_text(runner.client_id)


@events.test_start.add_listener  # type: ignore[untyped-decorator]
def _on_test_start(environment: Any, **_kw: Any) -> None:
    drill = getattr(environment.parsed_options, "faultline_drill", "")
    if drill and _is_remote_worker(environment):
        settings = DrillSettings(**json.loads(drill))
        # the users read DRILL through this module: replace its contents in place
        DRILL.__dict__.update(settings.__dict__)
        JepsenUser.network_timeout = JepsenUser.connection_timeout = DRILL.timeout
        for cls in JepsenUser.__subclasses__():
            cls.network_timeout = cls.connection_timeout = DRILL.timeout


@events.quitting.add_listener  # type: ignore[untyped-decorator]
def _on_quit(environment: Any, **_kw: Any) -> None:
    HISTORY.close()
