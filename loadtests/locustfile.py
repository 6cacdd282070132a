"""Payment clients for the drills: Locust ``FastHttpUser``s that record a Jepsen history.

Run by ``faultline.load`` as a subprocess (never imported by the drill runner: Locust
monkey-patches the process with gevent). Everything comes from the environment:

=============================  ==========================================================
``FAULTLINE_LOAD``             the scenario's ``load`` as JSON (profile, users, duration,
                               rate, mix, spike)
``FAULTLINE_STACK``            path of the seed JSON (contracts §4: merchants, api keys,
                               account ids)
``FAULTLINE_HISTORY_DIR``      where this process writes ``history-<pid>.jsonl``;
                               unset on a remote worker, whose lines go to the master
``FAULTLINE_SEED``             seeds every user's choices (operation, accounts, amounts)
``FAULTLINE_CLIENT_TIMEOUT``   seconds before a request is abandoned (``info``), 2.0
``FAULTLINE_CURRENCY``         EUR
``FAULTLINE_PARENT_PID``       the drill runner; when it dies, this load stops itself
``FAULTLINE_RACES``            fraction of transfers sent as a concurrent pair, 0.04
``FAULTLINE_WORKER_READY``     (remote worker) a file created once the master answered
``FAULTLINE_CLOCK_SKEW_NS``    TEST ONLY: added to this process's history clock
=============================  ==========================================================

Distributed (``faultline run --master`` + ``faultline load-worker`` elsewhere): the master
runs the shape and no users; it hands the drill's settings (load, seed, client
timeout, the seed merchants) to its workers with every spawn message (a Locust custom
argument, ``--faultline-drill``), and a remote worker (a Locust worker without
``FAULTLINE_HISTORY_DIR``) sends its history to the master (``history_relay.py``),
which writes it into the run's history directory on its own clock.

Operations (contracts §6): ``transfer`` (fresh idempotency key), ``replay`` (same key,
same body — also how a client retries after an unknown outcome), ``replay_diff`` (same
key, different body: must be refused with 422), ``balance``, ``statement``. Each is
recorded as ``invoke`` and then exactly one of ``ok`` (2xx), ``fail`` (4xx, or the
connection was refused before anything was sent) or ``info`` (timeout, reset, 5xx: the
client cannot know whether it happened).

Two concurrent patterns real incidents came from are part of ``transfer``:

- *double submit*: the same key sent twice at once (a double click, an impatient
  retry): one transfer at most, the other answer is 409 or the stored response.
- *withdrawal race*: two transfers that each move the whole balance of one account at
  once (the Flexcoin drain): at most one may succeed on a non-negative account.

With ``rate`` set, users pace themselves on a fixed schedule (an open model) and the
latency of an operation is measured from the moment it *should* have started, so a
stalled server shows up in the tail instead of silently slowing the clients down
(coordinated omission).
"""

from __future__ import annotations

import errno
import itertools
import json
import logging
import os
import random
import socket
import sys
import time
import uuid
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gevent
from locust import LoadTestShape, events, task
from locust.contrib.fasthttp import FastHttpUser

sys.path.insert(0, str(Path(__file__).resolve().parent))

from history_log import HistoryLog
from history_relay import install_master, install_worker
from load_shapes import ShapeSpec, users_at

OPERATIONS = ("transfer", "replay", "replay_diff", "balance", "statement")
DEFAULT_MIX = {"transfer": 60.0, "replay": 10.0, "replay_diff": 5.0, "balance": 15.0,
               "statement": 10.0}


def _env_json(name: str, default: Any) -> Any:
    raw = os.environ.get(name)
    return json.loads(raw) if raw else default


class DrillSettings:
    """What the users need from the drill: from the environment, or, on a remote worker,
    from the master (:meth:`to_dict` travels in Locust's spawn message)."""

    def __init__(self, load: dict[str, Any], seed: int = 0, timeout: float = 2.0,
                 currency: str = "EUR", races: float = 0.04,
                 merchants: list[dict[str, Any]] | None = None) -> None:
        self.load = load
        self.shape = ShapeSpec.from_load(load)
        self.seed = seed
        self.timeout = timeout
        self.currency = currency
        self.races = races
        self.merchants = list(merchants or [])
        self.mix = {k: float(v) for k, v in (load.get("mix") or DEFAULT_MIX).items()
                    if float(v) > 0}
        self.rate = load.get("rate")

    @classmethod
    def from_env(cls) -> DrillSettings:
        stack = os.environ.get("FAULTLINE_STACK")
        return cls(
            load=_env_json("FAULTLINE_LOAD", {"profile": "steady", "users": 2, "duration": 10}),
            seed=int(os.environ.get("FAULTLINE_SEED", "0")),
            timeout=float(os.environ.get("FAULTLINE_CLIENT_TIMEOUT", "2.0")),
            currency=os.environ.get("FAULTLINE_CURRENCY", "EUR"),
            races=float(os.environ.get("FAULTLINE_RACES", "0.04")),
            merchants=json.loads(Path(stack).read_text())["merchants"] if stack else [],
        )

    def to_dict(self) -> dict[str, Any]:
        return {"load": self.load, "seed": self.seed, "timeout": self.timeout,
                "currency": self.currency, "races": self.races, "merchants": self.merchants}


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
    """What one operation ended as."""

    type: str
    status: int | None
    body: Any


class PaymentClient(FastHttpUser):
    """A merchant's backend calling the payments api."""

    network_timeout = DRILL.timeout
    connection_timeout = DRILL.timeout
    max_retries = 0

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        if not _started:
            _started.append(time.monotonic())
        n = next(_user_numbers)
        prefix = _process_prefix(environment)
        self.process = f"{prefix}-u{n}"
        self.rng = random.Random(f"{DRILL.seed}/{_worker_index(environment)}/{n}")
        merchants = DRILL.merchants
        self.merchant = merchants[n % len(merchants)] if merchants else {"id": "", "accounts": []}
        self.auth = {"Authorization": f"Bearer {self.merchant.get('api_key', '')}"}
        self.accounts: list[str] = list(self.merchant.get("accounts", []))
        self.done: deque[tuple[str, dict[str, Any]]] = deque(maxlen=64)
        self.ops = list(DRILL.mix)
        self.weights = [DRILL.mix[o] for o in self.ops]
        users = max(DRILL.shape.users, 1)
        self.interval = users / float(DRILL.rate) if DRILL.rate else None
        self.next_at = time.monotonic()
        self.late = 0.0

    # ------------------------------------------------------------ pacing
    def wait_time(self) -> float:
        if self.interval is None:
            return self.rng.uniform(0.05, 0.15)
        self.next_at += self.interval
        return max(0.0, self.next_at - time.monotonic())

    # ------------------------------------------------------------ recording
    def _call(self, f: str, method: str, path: str, *, key: str | None = None,
              value: dict[str, Any] | None = None, body: dict[str, Any] | None = None,
              process: str | None = None, keep_body: bool = True) -> Outcome:
        proc = process or self.process
        HISTORY.write({"type": "invoke", "process": proc, "f": f, "key": key, "value": value})
        headers = dict(self.auth)
        if key is not None:
            headers["Idempotency-Key"] = key
        started = time.monotonic()
        # with a constant arrival rate, the first call of a task also counts the time it
        # waited past its slot (coordinated omission)
        late, self.late = self.late, 0.0
        try:
            kind, status, data, error = self._send(f, method, path, headers, body, keep_body)
        except BaseException as exc:  # GreenletExit when Locust stops a user mid-request
            HISTORY.write({"type": "info", "process": proc, "f": f, "key": key, "value": value,
                           "status": None, "body": None, "error": f"stopped: {type(exc).__name__}",
                           "latency_ms": round((time.monotonic() - started) * 1000, 3)})
            raise
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

    def _send(self, f: str, method: str, path: str, headers: dict[str, str], body: Any,
              keep_body: bool) -> tuple[str, int | None, Any, str | None]:
        status: int | None = None
        data: Any = None
        error: str | None = None
        with self.client.request(method, path, json=body, headers=headers, name=f,
                                 catch_response=True) as resp:
            status = resp.status_code or None
            if status is None:
                exc = getattr(resp, "error", None)
                error = type(exc).__name__ if exc is not None else "no_response"
                refused = isinstance(exc, ConnectionRefusedError) or (
                    isinstance(exc, OSError) and exc.errno == errno.ECONNREFUSED)
                kind = "fail" if refused else "info"
                resp.failure(error)
            else:
                if keep_body:
                    try:
                        data = resp.json()
                    except Exception:  # a non-JSON answer: keep the status only
                        data = None
                if 200 <= status < 300:
                    kind = "ok"
                    resp.success()
                elif 400 <= status < 500:
                    kind = "fail"
                    resp.success()  # a refusal is a correct answer, not a load error
                else:
                    kind = "info"
                    resp.failure(f"HTTP {status}")
        return kind, status, data, error

    def _transfer_body(self, amount: int | None = None) -> dict[str, Any]:
        src, dst = self.rng.sample(self.accounts, 2)
        return {"from_account": src, "to_account": dst,
                "amount": amount if amount is not None else self.rng.randint(1, 500),
                "currency": DRILL.currency}

    def _value(self, body: dict[str, Any]) -> dict[str, Any]:
        return {**body, "merchant_id": self.merchant.get("id")}

    def _post(self, f: str, key: str, body: dict[str, Any], process: str | None = None) -> Outcome:
        return self._call(f, "POST", "/v1/transfers", key=key, value=self._value(body),
                          body=body, process=process)

    def _retry_unknown(self, key: str, body: dict[str, Any], outcome: Outcome) -> Outcome:
        """A careful client: after an unknown outcome (or 409 in flight), retry with the
        same key and body until it gets a definite answer (bounded)."""
        delay = 0.2
        for _ in range(3):
            if outcome.type == "ok" or (outcome.type == "fail" and outcome.status != 409):
                break
            gevent.sleep(delay)
            delay *= 2
            outcome = self._post("replay", key, body)
        return outcome

    # ------------------------------------------------------------ operations
    def transfer(self) -> None:
        if len(self.accounts) < 2:
            return
        pick = self.rng.random()
        if pick < DRILL.races / 2:
            self.double_submit()
            return
        if pick < DRILL.races:
            self.withdrawal_race()
            return
        body = self._transfer_body()
        key = f"t-{uuid.uuid4()}"
        outcome = self._retry_unknown(key, body, self._post("transfer", key, body))
        if outcome.type == "ok":
            self.done.append((key, body))

    def double_submit(self) -> None:
        body = self._transfer_body()
        key = f"t-{uuid.uuid4()}"
        first = gevent.spawn(self._post, "transfer", key, body)
        twin = gevent.spawn(self._post, "replay", key, body, f"{self.process}b")
        gevent.joinall([first, twin])
        if first.value is not None and first.value.type == "ok":
            self.done.append((key, body))

    def withdrawal_race(self) -> None:
        src = self.rng.choice(self.accounts)
        got = self._call("balance", "GET", f"/v1/accounts/{src}", value={"account": src})
        balance = got.body.get("balance") if isinstance(got.body, dict) else None
        if not isinstance(balance, int) or balance <= 0:
            return
        others = [a for a in self.accounts if a != src]
        bodies = [{"from_account": src, "to_account": self.rng.choice(others), "amount": balance,
                   "currency": DRILL.currency} for _ in range(2)]
        keys = [f"t-{uuid.uuid4()}" for _ in bodies]
        racers = [gevent.spawn(self._post, "transfer", keys[0], bodies[0]),
                  gevent.spawn(self._post, "transfer", keys[1], bodies[1], f"{self.process}b")]
        gevent.joinall(racers)

    def replay(self) -> None:
        if not self.done:
            self.transfer()
            return
        key, body = self.rng.choice(self.done)
        self._post("replay", key, body)

    def replay_diff(self) -> None:
        if not self.done:
            self.transfer()
            return
        key, body = self.rng.choice(self.done)
        self._post("replay_diff", key, {**body, "amount": body["amount"] + 1})

    def balance(self) -> None:
        if self.accounts:
            acc = self.rng.choice(self.accounts)
            self._call("balance", "GET", f"/v1/accounts/{acc}", value={"account": acc})

    def statement(self) -> None:
        if self.accounts:
            acc = self.rng.choice(self.accounts)
            self._call("statement", "GET", f"/v1/accounts/{acc}/statement?limit=20",
                       value={"account": acc}, keep_body=False)

    @task
    def operate(self) -> None:
        """One operation, chosen by the scenario's mix (seeded per user)."""
        if time.monotonic() >= _started[0] + DRILL.shape.duration:
            gevent.sleep(0.25)  # the load is over: let requests in flight finish
            return
        op = self.rng.choices(self.ops, self.weights)[0]
        if self.interval is not None:
            self.late = max(0.0, time.monotonic() - self.next_at)
        getattr(self, op)()


class DrillShape(LoadTestShape):
    """The scenario's profile (``loadtests/load_shapes.py``)."""

    def tick(self) -> tuple[int, float] | None:
        t = self.get_run_time()
        shape = DRILL.shape
        users = users_at(shape, min(t, shape.duration - 1e-3))
        if users is None or t >= shape.duration + DRILL.timeout + 1.0:
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


@events.init_command_line_parser.add_listener
def _on_parser(parser: Any) -> None:
    parser.add_argument("--faultline-drill", default="", include_in_web_ui=False,
                        help="set by the master: the drill's settings for remote workers")


@events.init.add_listener
def _on_init(environment: Any, **_kw: Any) -> None:
    from locust.runners import MasterRunner

    gevent.spawn(_watch_parent, environment)
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


@events.test_start.add_listener
def _on_test_start(environment: Any, **_kw: Any) -> None:
    global DRILL
    drill = getattr(environment.parsed_options, "faultline_drill", "")
    if drill and _is_remote_worker(environment):
        DRILL = DrillSettings(**json.loads(drill))
        PaymentClient.network_timeout = PaymentClient.connection_timeout = DRILL.timeout


@events.quitting.add_listener
def _on_quit(environment: Any, **_kw: Any) -> None:
    HISTORY.close()
