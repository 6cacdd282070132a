"""Load for the drills: a workload's locustfile run by Locust as a headless subprocess.

The runner never imports Locust (gevent monkey-patching); :class:`LocustRun` starts it,
bounds it and tails the history files it writes (:mod:`faultline.history` merges them).
With a :class:`LocustMaster` the load runs on other machines, each a
:class:`LocustWorker` (``faultline load-worker``) whose history comes back over Locust's
own channel. :mod:`faultline.load.client` is the other side: what a locustfile imports.
"""

from __future__ import annotations

from ._locust import LoadError, LoadProgress, LocustMaster, LocustRun, check_target
from ._worker import LocustWorker

__all__ = [
    "LoadError",
    "LoadProgress",
    "LocustMaster",
    "LocustRun",
    "LocustWorker",
    "check_target",
]
