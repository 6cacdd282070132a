"""Launchers: how a system's stack starts, stops and takes process faults.

One shape for every target: a :class:`Launcher` returns a :class:`StackInfo` and raises
:class:`StackError`. ``LocalStack`` runs a system's :class:`LocalTopology` as local
processes (the default target), ``ComposeStack`` runs its containers, and
``ExternalStack`` attaches to a stack somebody else runs. ``sweep()`` ends what the
stacks of a killed owner left behind.
"""

from faultline.stack._compose import ComposeStack
from faultline.stack._compose_spec import ComposeError, ComposeSpec, OneOff
from faultline.stack._embedded import EmbeddedPostgres, EmbeddedRedis, free_port
from faultline.stack._external import ExternalStack
from faultline.stack._launcher import Launcher, StackError, StackInfo
from faultline.stack._local import LocalStack, StackInterrupted, stop_on_signals, write_private
from faultline.stack._state import sweep
from faultline.stack._topology import App, LocalTopology, Postgres, Redis, Wiring

__all__ = [
    "App",
    "ComposeError",
    "ComposeSpec",
    "ComposeStack",
    "EmbeddedPostgres",
    "EmbeddedRedis",
    "ExternalStack",
    "Launcher",
    "LocalStack",
    "LocalTopology",
    "OneOff",
    "Postgres",
    "Redis",
    "StackError",
    "StackInfo",
    "StackInterrupted",
    "Wiring",
    "free_port",
    "stop_on_signals",
    "sweep",
    "write_private",
]
