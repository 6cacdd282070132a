"""Nemeses: the only part of a drill that injects (and heals) faults.

- :class:`NetworkNemesis`: toxics on the stack's hops through the fault proxy
  (``ProxyClient``), including the proxy's own ``lost_ack``, ``connect_delay`` and
  ``http_error``; ``down`` disables the hop.
- :class:`ProcessNemesis`: kill (any signal, optional restart), pause (SIGSTOP/SIGCONT)
  and restart of a service, through the stack launcher (:class:`ServiceControl`).
- :class:`FaultTimeline`: the scenario's fault timeline on the monotonic clock, in its
  own thread; ``heal_all()`` is what the runner calls in ``finally``.
- ``faultline.faults._container``: the same faults on compose containers (Docker SDK).

Every start and stop is a nemesis line of the history (:class:`NemesisLog`).
"""

from __future__ import annotations

from ._log import NemesisLog
from ._network import TOXIC_PREFIX, NetworkNemesis, heal_proxy
from ._process import ProcessNemesis, ServiceControl
from ._timeline import FaultTimeline, TimelineStep, plan

__all__ = [
    "TOXIC_PREFIX",
    "FaultTimeline",
    "NemesisLog",
    "NetworkNemesis",
    "ProcessNemesis",
    "ServiceControl",
    "TimelineStep",
    "heal_proxy",
    "plan",
]
