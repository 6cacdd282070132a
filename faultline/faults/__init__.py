"""Nemeses: the only part of a drill that injects (and heals) faults.

- :class:`NetworkNemesis`: toxics on the stack's hops through the fault proxy
  (``ProxyClient``), including the proxy's own ``lost_ack``, ``connect_delay``,
  ``http_error``, ...; ``down`` disables the hop;
- :class:`ProcessNemesis`: kill (any signal, optional restart), pause (SIGSTOP/SIGCONT)
  and restart of a service, through the stack's launcher (processes or containers);
- :class:`ActionNemesis`: the system's own faults (its profile's actions);
- :class:`FaultTimeline`: the scenario's faults on the monotonic clock, fixed or
  triggered by the system's state, in its own thread; ``heal_all()`` is what the runner
  calls in ``finally``.

Every start and stop is a nemesis line of the history (:class:`faultline.history.NemesisLog`);
every stop line carries the fault's ``effect``: what it changed.
"""

from __future__ import annotations

from ._action import ActionNemesis
from ._network import TOXIC_PREFIX, NetworkNemesis, heal_proxy
from ._process import ProcessNemesis
from ._timeline import FaultTimeline, StateProbe, TimelineStep, plan

__all__ = [
    "TOXIC_PREFIX",
    "ActionNemesis",
    "FaultTimeline",
    "NetworkNemesis",
    "ProcessNemesis",
    "StateProbe",
    "TimelineStep",
    "heal_proxy",
    "plan",
]
