"""The remote workers' history relay without Locust: batches, the clock offset estimate,
the translation onto the master's clock and the final re-offset."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import faultline.history as history_log
from faultline.history import merge_histories
from faultline.load.client._relay import MAX_BATCH, HistoryRelay, OffsetEstimate, OutgoingHistory

MS = 1_000_000
#: the worker's clock reads this much more than the master's
AHEAD = 3_600_000 * MS


def test_offset_is_the_smallest_sample() -> None:
    est = OffsetEstimate()
    assert est.observe(sent_ns=100, received_ns=170) == 70
    assert est.observe(sent_ns=200, received_ns=205) == 5
    assert est.observe(sent_ns=300, received_ns=390) == 5  # a slow message changes nothing
    assert est.samples == 3


def _batch(sent: int, lines: list[dict[str, Any]], final: bool = False) -> dict[str, Any]:
    return {"seq": 0, "sent": sent, "lines": lines, "final": final}


def test_lines_land_on_the_master_clock_and_early_ones_are_re_offset(tmp_path: Path) -> None:
    now = [0]
    relay = HistoryRelay(tmp_path, clock=lambda: now[0])
    # true times on the master's clock; the worker stamps them with its own clock
    invoke, ok = 1_000 * MS, 1_004 * MS
    worker = [{"type": "invoke", "process": "w0-h-p1-u0", "f": "balance", "time": invoke + AHEAD},
              {"type": "ok", "process": "w0-h-p1-u0", "f": "balance", "time": ok + AHEAD}]
    # the first batch is held up 40 ms on its way: a coarse first estimate
    now[0] = 1_010 * MS + 40 * MS
    relay.receive("host_abc", _batch(1_010 * MS + AHEAD, worker[:1]))
    path = tmp_path / "history-host_abc.jsonl"
    first = json.loads(path.read_text())
    assert first["time"] == invoke + 40 * MS  # the best estimate so far, written at once
    assert first["worker_time"] == invoke + AHEAD
    now[0] = 1_020 * MS + 1 * MS  # a later batch takes 1 ms: a better estimate
    relay.receive("host_abc", _batch(1_020 * MS + AHEAD, worker[1:], final=True))
    assert relay.pending() == []
    relay.finish()
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert [x["time"] for x in lines] == [invoke + 1 * MS, ok + 1 * MS]
    status = json.loads((tmp_path / "workers.json").read_text())
    assert status["remote"]["host_abc"]["offset_ns"] == -AHEAD + 1 * MS
    assert status["remote"]["host_abc"]["final"] is True
    relay.finish()  # idempotent
    nemesis = [{"process": "nemesis", "type": "info", "f": "start", "time": invoke + 2 * MS}]
    merged = merge_histories([path, nemesis])
    assert isinstance(merged, list)
    assert [(m["type"], m["process"]) for m in merged] == [
        ("invoke", "w0-h-p1-u0"), ("info", "nemesis"), ("ok", "w0-h-p1-u0")]


def test_a_worker_is_pending_until_its_final_batch(tmp_path: Path) -> None:
    relay = HistoryRelay(tmp_path, clock=lambda: 10)
    relay.receive("a", _batch(5, []))  # the hello: no lines, no file
    relay.receive("b", _batch(5, [{"type": "invoke", "process": "p", "time": 1}]))
    assert relay.pending() == ["a", "b"]
    assert not (tmp_path / "history-a.jsonl").exists()
    relay.receive("a", _batch(6, [], final=True))
    assert relay.pending() == ["b"]


def test_worker_ids_make_safe_file_names(tmp_path: Path) -> None:
    relay = HistoryRelay(tmp_path, clock=lambda: 10)
    relay.receive("../evil host/x", _batch(5, [{"type": "invoke", "process": "p", "time": 1}]))
    assert [p.name for p in tmp_path.glob("history-*")] == ["history-.._evil_host_x.jsonl"]


def test_outgoing_batches_are_bounded_and_only_the_last_is_final() -> None:
    out = OutgoingHistory(clock=lambda: 42)
    for i in range(2 * MAX_BATCH + 3):
        out.add({"index": i})
    batches = out.batches(final=True)
    assert [len(b["lines"]) for b in batches] == [MAX_BATCH, MAX_BATCH, 3]
    assert [b["final"] for b in batches] == [False, False, True]
    assert [b["seq"] for b in batches] == [0, 1, 2]
    assert out.stamp(batches[0])["sent"] == 42
    assert out.final_sent
    assert out.batches() == [{"seq": 3, "sent": None, "lines": [], "final": False}]


def test_outgoing_is_due_with_lines_or_for_a_clock_sample() -> None:
    out = OutgoingHistory(clock=lambda: 0)
    assert out.due(0.0)  # never sent: the hello
    out.stamp(out.batches()[0])
    assert not out.due(out.last_sent or 0.0)
    out.add({"index": 0})
    assert out.due(out.last_sent or 0.0)


def test_history_log_sink_and_test_skew(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(history_log, "CLOCK_SKEW_NS", 10**15)
    log = history_log.HistoryLog(tmp_path)
    shipped: list[dict[str, Any]] = []
    log.sink = shipped.append
    log.write({"type": "invoke", "process": "p"})
    log.write({"type": "ok", "process": "p"})
    assert [x["index"] for x in shipped] == [0, 1]
    assert shipped[0]["time"] > 10**15  # the skewed clock
    assert not list(tmp_path.iterdir())  # nothing on this machine's disk
