"""A service coming back does not hold up the other faults' steps.

Bringing a service back waits for it to be ready, and it may be ready only once
another fault heals (an api restarted while its database hop stalls every connection).
The scheduler once ran that wait in line: the toxic's heal waited for the restart, the
restart for the heal — for the launcher's whole 60 s readiness timeout (an exploration
drew it). Real clock, fake nemeses: the restart here is ready only after the toxic's
heal, or gives up after :data:`GIVE_UP` seconds.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from faultline.faults import FaultTimeline
from faultline.history import NemesisLog
from faultline.scenario import parse_scenario

GIVE_UP = 5.0

SCENARIO = """
name: t
load: {duration: 10s}
faults:
  - {at: 0.2s, for: 1s, hop: api->postgres, toxic: timeout}
  - {at: 0.3s, kill: api, restart_after: 200ms}
  - {at: 0.8s, kill: api, restart_after: 100ms}
"""


class Network:
    active: list[str] = []

    def __init__(self, t0: list[float], healed: threading.Event) -> None:
        self.t0, self.healed, self.calls = t0, healed, list[tuple[str, float]]()

    def start(self, index: int, fault: Any) -> None:
        self.calls.append(("start", time.monotonic() - self.t0[0]))

    def stop(self, index: int) -> None:
        self.calls.append(("stop", time.monotonic() - self.t0[0]))
        self.healed.set()

    def heal_all(self) -> list[str]:
        return []


class Processes:
    active: list[str] = []
    controls = frozenset({"kill", "pause", "restart"})

    def __init__(self, t0: list[float], healed: threading.Event) -> None:
        self.t0, self.healed, self.calls = t0, healed, list[tuple[str, int, float]]()

    def start(self, index: int, fault: Any) -> None:
        self.calls.append(("kill", index, time.monotonic() - self.t0[0]))

    def stop(self, index: int) -> None:  # restarted: ready once the database answers
        self.calls.append(("restarting", index, time.monotonic() - self.t0[0]))
        if not self.healed.wait(GIVE_UP):
            raise RuntimeError("api not ready")
        self.calls.append(("ready", index, time.monotonic() - self.t0[0]))

    def heal_all(self) -> list[str]:
        return []


def test_a_restart_waiting_for_readiness_does_not_hold_up_the_heal_it_needs() -> None:
    t0 = [time.monotonic()]
    healed = threading.Event()
    network, processes = Network(t0, healed), Processes(t0, healed)
    timeline = FaultTimeline(parse_scenario(SCENARIO, "t.yaml").faults,
                             nemeses={"toxic": network, "process": processes},
                             log=NemesisLog(), load_duration=10.0)
    cpu = time.process_time()
    timeline.start(t0[0])
    deadline = time.monotonic() + 2 * GIVE_UP
    while time.monotonic() < deadline and len(processes.calls) < 5:
        time.sleep(0.05)
    timeline.stop()
    timeline.heal_all()
    # the second kill waited ~0.5 s for the api to come back: polled, not in a spin
    used = time.process_time() - cpu
    assert used < 0.2  # 0.006 s polled; 0.4 s when it spun
    assert timeline.errors == []
    (_, healed_at), = [c for c in network.calls if c[0] == "stop"]
    assert healed_at < 1.6  # on time (1.2 s), not after the restart gave up
    events = [(what, index) for what, index, _ in processes.calls]
    assert events == [("kill", 1), ("restarting", 1), ("ready", 1), ("kill", 2),
                      ("restarting", 2), ("ready", 2)][:len(events)]
    assert len(events) >= 5
    ready = processes.calls[2][2]
    second_kill = processes.calls[3][2]
    assert healed_at <= ready < healed_at + 0.5
    # the second kill (due at 0.8 s) waited for the api to be back, not longer
    assert ready <= second_kill < ready + 0.5
