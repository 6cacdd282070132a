"""Launchers of the payment stack: ``LocalStack`` (local processes, the default),
``ExternalStack`` (attach to a running one by URLs) and ``ComposeStack`` (containers).

Every launcher has the :class:`Launcher` shape; ``sweep()`` ends what the stacks of a
killed owner left behind.
"""

from faultline.stack._external import ExternalStack
from faultline.stack._launcher import HOPS, SERVICES, Launcher, StackError, StackInfo
from faultline.stack._local import LocalStack, StackInterrupted, stop_on_signals
from faultline.stack._state import sweep

__all__ = [
    "HOPS",
    "SERVICES",
    "ExternalStack",
    "Launcher",
    "LocalStack",
    "StackError",
    "StackInfo",
    "StackInterrupted",
    "stop_on_signals",
    "sweep",
]
