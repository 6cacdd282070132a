"""Faults that start when the system reaches a state (a metric, a number of operations),
with a deadline; timed faults heal ``for`` after they really started."""

from __future__ import annotations

from typing import Any

from faultline.faults import FaultTimeline
from faultline.history import NemesisLog
from faultline.scenario import parse_scenario


class Recorder:
    """A nemesis that records when (on the fake clock) it was asked to do what."""

    controls = frozenset({"kill", "pause", "restart"})

    def __init__(self, now: list[float]) -> None:
        self.now = now
        self.calls: list[tuple[float, str, int]] = []
        self.active: list[str] = []

    def start(self, index: int, fault: Any) -> None:
        self.calls.append((round(self.now[0], 2), "start", index))

    def stop(self, index: int) -> None:
        self.calls.append((round(self.now[0], 2), "stop", index))

    def heal_all(self) -> list[str]:
        return []


class Probe:
    """Metric values and operations as functions of the fake clock."""

    def __init__(self, now: list[float]) -> None:
        self.now = now

    def metric(self, name: str) -> float | None:
        if name == "stream_pending":
            return 3.0 if 7.0 <= self.now[0] < 8.0 else 0.0
        return None

    def operations(self) -> int:
        return int(self.now[0] * 100)  # 100 operations a second


class Clockwork:
    """Stands in for the timeline's stop event: every wait advances the fake clock."""

    def __init__(self, now: list[float]) -> None:
        self.now = now

    def wait(self, delay: float) -> bool:
        self.now[0] += max(delay, 0.01)
        return self.now[0] > 60

    def is_set(self) -> bool:
        return False

    def set(self) -> None:
        pass


SCENARIO = """
name: t
load: {duration: 40s}
faults:
  - {at: 2s, for: 3s, kill: worker-1, when: {metric: stream_pending, above: 0}}
  - {at: 0s, for: 1s, pause: relay, when: {operations: 1000}}
  - {at: 1s, for: 1s, pause: api, when: {metric: stream_pending, above: 5, deadline: 20s}}
  - {at: 3s, for: 2s, restart: redis}
"""


def test_triggered_faults_start_on_the_condition_and_heal_for_after() -> None:
    now = [0.0]
    recorder = Recorder(now)
    log = NemesisLog(clock=lambda: int(now[0] * 1e9))
    timeline = FaultTimeline(parse_scenario(SCENARIO, "t.yaml").faults,
                             nemeses={"process": recorder}, log=log, probe=Probe(now),
                             load_duration=40.0, clock=lambda: now[0])
    timeline._stop = Clockwork(now)  # type: ignore[assignment]
    timeline._run(0.0)
    starts = {i: t for t, what, i in recorder.calls if what == "start"}
    stops = {i: t for t, what, i in recorder.calls if what == "stop"}
    # pending entries > 0 from 7 s on: watched from 2 s, started within a poll of 7 s
    assert 7.0 <= starts[0] <= 7.15
    assert abs(stops[0] - (starts[0] + 3.0)) < 0.15  # 'for' counts from the real start
    # after 1000 operations (10 s at 100/s)
    assert 10.0 <= starts[1] <= 10.15
    # never above 5: skipped at its deadline, recorded, never injected
    assert 2 not in starts
    assert "did not happen between 1s and 20s" in timeline.skipped[2]
    skipped = [line for line in log.lines if line["f"] == "skipped"]
    assert [line["value"]["index"] for line in skipped] == [2]
    assert 2 not in timeline.started
    # a timed fault keeps its times
    assert starts[3] == 3.0
    assert not timeline.errors
