"""History of remote load workers, carried over Locust's own master/worker channel.

A load worker on another machine (``faultline load-worker``) shares no filesystem with
the master, and its monotonic clock has nothing to do with the master's (the clock of
the fault lines). So:

- the worker's :class:`~faultline.history.HistoryLog` hands its lines to an
  :class:`OutgoingHistory`; every ``FLUSH_INTERVAL`` they go to the master as one
  ``faultline_history`` message ``{seq, sent, lines, final}``, where ``sent`` is the
  worker's clock at sending (an empty batch at least every ``SYNC_INTERVAL``);
- the master keeps, per worker, the smallest ``received - sent`` over all its messages
  as the offset between the two clocks (NTP's reasoning: each sample is the offset plus
  that message's transit delay, so the minimum is the tightest bound), and writes the
  lines at once into ``history-<worker id>.jsonl`` with ``time`` translated by the best
  offset so far (the runner tails these files and starts the fault timeline with the
  first operation). Each line keeps its own clock's value as ``worker_time``; at the
  end the file is rewritten with the final offset, so early lines are not left with
  an early, coarser estimate. ``workers.json`` records the workers and their offsets;
- the end: when the master's test stops, it sends ``faultline_finish`` to each worker;
  the worker stops its users (their last completions are recorded) and sends what is
  left with ``final``; the master waits for every final (bounded by
  ``FINISH_TIMEOUT``) before Locust goes on to quit.

The bookkeeping is plain Python (tested without Locust); :func:`install_worker` and
:func:`install_master` wire it to a Locust runner.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TextIO

from faultline.history import HistoryLog, clock_ns

__all__ = ["FINISH", "MESSAGE", "HistoryRelay", "OffsetEstimate", "OutgoingHistory",
           "WorkerHistory", "install_master", "install_worker"]

#: the custom message types on Locust's channel
MESSAGE = "faultline_history"
FINISH = "faultline_finish"
#: seconds between two batches of a worker
FLUSH_INTERVAL = 0.1
#: an empty batch at least this often (seconds): one more clock sample
SYNC_INTERVAL = 1.0
#: lines per message at most
MAX_BATCH = 500
#: seconds the master waits for the last lines of its workers
FINISH_TIMEOUT = 10.0

log = logging.getLogger("faultline.history")


class OffsetEstimate:
    """``master clock - worker clock``, in ns: the minimum of ``received - sent``."""

    def __init__(self) -> None:
        self.offset: int | None = None
        self.samples = 0

    def observe(self, sent_ns: int, received_ns: int) -> int:
        """One message: the best estimate so far."""
        sample = received_ns - sent_ns
        if self.offset is None or sample < self.offset:
            self.offset = sample
        self.samples += 1
        return self.offset


class WorkerHistory:
    """The master's copy of one remote worker's history, on the master's clock."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.clock = OffsetEstimate()
        self.final = False
        self.lines = 0
        #: the largest offset a written line got (offsets only ever decrease)
        self._written_with: int | None = None
        self._file: TextIO | None = None

    def receive(self, batch: Mapping[str, Any], received_ns: int) -> None:
        """Translate and append one batch."""
        offset = self.clock.observe(int(batch["sent"]), received_ns)
        lines = batch.get("lines") or []
        if lines:
            if self._file is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed in finish()
            for raw in lines:
                line = dict(raw)
                line["worker_time"] = int(line["time"])
                line["time"] = line["worker_time"] + offset
                self._file.write(json.dumps(line, separators=(",", ":"), default=str) + "\n")
            self._file.flush()
            self.lines += len(lines)
            if self._written_with is None:
                self._written_with = offset
        if batch.get("final"):
            self.final = True

    def finish(self) -> None:
        """Close; rewrite the file if lines went out with an older, larger offset."""
        if self._file is not None:
            self._file.close()
            self._file = None
        offset = self.clock.offset
        if self._written_with is None or offset is None or self._written_with == offset:
            return
        tmp = self.path.with_suffix(".tmp")
        with open(self.path, encoding="utf-8") as src, open(tmp, "w", encoding="utf-8") as dst:
            for raw in src:
                try:
                    line = json.loads(raw)
                except ValueError:
                    continue
                line["time"] = int(line["worker_time"]) + offset
                dst.write(json.dumps(line, separators=(",", ":"), default=str) + "\n")
        os.replace(tmp, self.path)
        self._written_with = offset


def _file_name(worker_id: str) -> str:
    return "history-" + re.sub(r"[^A-Za-z0-9_.-]", "_", worker_id) + ".jsonl"


class HistoryRelay:
    """The master's side: one :class:`WorkerHistory` per remote worker."""

    def __init__(self, directory: Path, clock: Callable[[], int] = time.monotonic_ns) -> None:
        self.directory = directory
        self.clock = clock  # the master's own clock: no test skew here
        self.workers: dict[str, WorkerHistory] = {}
        self.connected: list[str] = []
        self.finished = False

    def receive(self, worker_id: str, batch: Mapping[str, Any]) -> None:
        """A ``faultline_history`` message from ``worker_id``."""
        received = self.clock()
        worker = self.workers.get(worker_id)
        if worker is None:
            worker = self.workers[worker_id] = WorkerHistory(self.directory / _file_name(worker_id))
            self.write_status()
        worker.receive(batch, received)

    def connect(self, worker_id: str) -> None:
        """A worker (remote or forked) reported ready to the master."""
        if worker_id not in self.connected:
            self.connected.append(worker_id)
            self.write_status()

    def pending(self) -> list[str]:
        """Remote workers whose last lines have not arrived."""
        return [w for w, h in self.workers.items() if not h.final]

    def finish(self) -> None:
        """Translate every file with its final offset (idempotent)."""
        if self.finished:
            return
        self.finished = True
        for worker in self.workers.values():
            worker.finish()
        self.write_status()

    def write_status(self) -> None:
        """``workers.json``: who connected, who sent history, the clock offsets."""
        status = {
            "connected": self.connected,
            "remote": {w: {"file": h.path.name, "lines": h.lines, "final": h.final,
                           "offset_ns": h.clock.offset, "samples": h.clock.samples}
                       for w, h in self.workers.items()},
        }
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = self.directory / "workers.json.tmp"
        tmp.write_text(json.dumps(status, indent=1))
        os.replace(tmp, self.directory / "workers.json")


class OutgoingHistory:
    """The worker's side: lines waiting to be sent, cut into batches."""

    def __init__(self, clock: Callable[[], int] = clock_ns) -> None:
        self.clock = clock
        self.buffer: list[dict[str, Any]] = []
        self.seq = 0
        self.last_sent: float | None = None
        self.final_sent = False

    def add(self, line: dict[str, Any]) -> None:
        """A :class:`HistoryLog` sink."""
        self.buffer.append(line)

    def due(self, now: float) -> bool:
        """Lines are waiting, or no batch went out for ``SYNC_INTERVAL``."""
        return bool(self.buffer) or self.last_sent is None or now - self.last_sent >= SYNC_INTERVAL

    def batches(self, final: bool = False) -> list[dict[str, Any]]:
        """Everything waiting, in batches of at most ``MAX_BATCH`` lines (at least one
        batch); with ``final`` the last one says so. ``sent`` is stamped by :meth:`stamp`
        right before each goes out."""
        out = []
        while True:
            lines, self.buffer = self.buffer[:MAX_BATCH], self.buffer[MAX_BATCH:]
            out.append({"seq": self.seq, "sent": None, "lines": lines,
                        "final": final and not self.buffer})
            self.seq += 1
            if not self.buffer:
                break
        if final:
            self.final_sent = True
        return out

    def stamp(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Set ``sent`` to this worker's clock now."""
        batch["sent"] = self.clock()
        self.last_sent = time.monotonic()
        return batch


# ---------------------------------------------------------------- Locust wiring


def install_worker(environment: Any, history: HistoryLog) -> OutgoingHistory:
    """On a remote worker: ship ``history``'s lines to the master."""
    import gevent

    runner = environment.runner
    out = OutgoingHistory()
    history.sink = out.add

    def send(final: bool = False) -> None:
        for batch in out.batches(final):
            runner.send_message(MESSAGE, out.stamp(batch))

    def pump() -> None:
        while not out.final_sent:
            gevent.sleep(FLUSH_INTERVAL)
            if out.due(time.monotonic()) and not out.final_sent:
                send()

    def on_finish(environment: Any, msg: Any, **_kw: Any) -> None:
        environment.runner.stop()  # users end; what they were doing is recorded
        send(final=True)

    def on_quitting(environment: Any, **_kw: Any) -> None:
        if not out.final_sent and out.buffer:  # e.g. the master vanished: best effort
            send(final=True)

    runner.register_message(FINISH, on_finish, concurrent=True)
    environment.events.quitting.add_listener(on_quitting)
    send()  # makes this worker known to the master, and a first clock sample
    gevent.spawn(pump)
    return out


def install_master(environment: Any, directory: Path) -> HistoryRelay:
    """On the master: write the remote workers' lines into ``directory`` and wait for
    their last lines when the test stops."""
    import gevent

    runner = environment.runner
    relay = HistoryRelay(directory)

    def on_history(environment: Any, msg: Any, **_kw: Any) -> None:
        relay.receive(msg.node_id, msg.data)

    def on_connect(client_id: str, **_kw: Any) -> None:
        relay.connect(client_id)

    def alive(worker_id: str) -> bool:
        node = runner.clients.get(worker_id)
        return node is not None and node.state != "missing"

    deadline: list[float] = []

    def collect(**_kw: Any) -> None:
        # the test stopped (the shape ended), or Locust is quitting (SIGTERM): both
        # come here, the second one only waits for what the first one started
        if not deadline:
            deadline.append(time.monotonic() + FINISH_TIMEOUT)
            for worker_id in relay.pending():
                if alive(worker_id):
                    runner.send_message(FINISH, None, client_id=worker_id)
        while (not relay.finished and time.monotonic() < deadline[0]
               and any(alive(w) for w in relay.pending())):
            gevent.sleep(0.05)
        if not relay.finished:
            late = relay.pending()
            if late:
                log.error("no last history lines from %s within %gs", ", ".join(late),
                          FINISH_TIMEOUT)
            relay.finish()

    runner.register_message(MESSAGE, on_history)
    environment.events.worker_connect.add_listener(on_connect)
    environment.events.test_stop.add_listener(collect)
    environment.events.quitting.add_listener(collect)
    relay.write_status()
    return relay
