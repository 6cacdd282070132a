"""Load for the drills: Locust (``loadtests/``) as a headless subprocess, and its history.

The runner never imports Locust (gevent monkey-patching); :class:`LocustRun` starts it,
bounds it and tails the history files it writes; :func:`merge_histories` joins the
per-process files and the nemesis events into one history, re-indexed. With a
:class:`LocustMaster` the load runs on other machines, each a :class:`LocustWorker`
(``faultline load-worker``) whose history comes back over Locust's own channel.
"""

from __future__ import annotations

from ._history import merge_histories, read_jsonl, write_jsonl
from ._locust import LOCUSTFILE, LoadError, LoadProgress, LocustMaster, LocustRun, check_target
from ._worker import LocustWorker

__all__ = [
    "LOCUSTFILE",
    "LoadError",
    "LoadProgress",
    "LocustMaster",
    "LocustRun",
    "LocustWorker",
    "check_target",
    "merge_histories",
    "read_jsonl",
    "write_jsonl",
]
