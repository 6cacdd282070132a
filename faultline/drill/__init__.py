"""The drill engine: one scenario from stack to verdict, and the verdict of a stored run.

- :func:`run_drill` runs one scenario file (phases in ``_runner``); a
  :class:`StackPool` lets consecutive drills share a stack;
- :class:`RunFolder` owns every file name of a run folder;
- :func:`judge` turns a run folder into a verdict (used by ``run``, ``check`` and
  ``report`` alike).
"""

from faultline.drill._judge import DrillRecord, Judgement, fault_report, judge
from faultline.drill._pool import StackPool
from faultline.drill._runner import DrillOptions, DrillOutcome, run_drill
from faultline.drill._store import RunFolder

__all__ = [
    "DrillOptions",
    "DrillOutcome",
    "DrillRecord",
    "Judgement",
    "RunFolder",
    "StackPool",
    "fault_report",
    "judge",
    "run_drill",
]
