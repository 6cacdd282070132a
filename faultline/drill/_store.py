"""The run folder: the one place that knows the name of every file a drill writes.

``runs/<UTC timestamp>-<scenario name>/`` holds everything a run produced, so that
``faultline check`` and ``faultline report`` can judge it again without the stack. Every
module that reads or writes a run's files asks a :class:`RunFolder` for the path; no
other module spells a file name.
"""

from __future__ import annotations

import datetime as _dt
import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["RunFolder"]


@dataclass(frozen=True, slots=True)
class RunFolder:
    """The files of one run. ``path`` is absolute: child processes run elsewhere."""

    path: Path

    SCENARIO = "scenario.yaml"
    SEED = "seed"
    DRILL = "drill.json"
    STACK = "stack.json"
    HISTORY = "history.jsonl"
    NEMESIS = "nemesis.jsonl"
    FAULTS = "faults.json"
    METRICS = "metrics.jsonl"
    ALERTS = "alerts.json"
    BREAKERS = "breakers.json"
    BASELINE = "baseline_state"
    FINAL = "final_state"
    VERDICT = "verdict.json"
    JUNIT = "junit.xml"
    REPORT = "report.html"
    PROXY_EVENTS = "proxy-events.jsonl"
    HARNESS_ERROR = "harness-error.txt"
    LOGS = "logs"
    LOAD = "load"
    PROBE = "probe"

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(os.path.abspath(self.path)))

    @classmethod
    def create(cls, runs_dir: str | os.PathLike[str], name: str) -> RunFolder:
        """A new, empty ``runs_dir/<UTC timestamp>-<name>[-N]/``."""
        base = Path(os.path.abspath(runs_dir))
        stamp = _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%S")
        n = 1
        while True:
            path = base / (f"{stamp}-{name}" if n == 1 else f"{stamp}-{name}-{n}")
            try:
                path.mkdir(parents=True)
            except FileExistsError:
                n += 1
                continue
            return cls(path)

    def file(self, name: str) -> Path:
        """The path of one of the names above (``folder.file(RunFolder.HISTORY)``)."""
        return self.path / name

    @property
    def scenario(self) -> Path:
        return self.path / self.SCENARIO

    @property
    def history(self) -> Path:
        return self.path / self.HISTORY

    @property
    def final_state(self) -> Path:
        return self.path / self.FINAL

    @property
    def baseline_state(self) -> Path:
        return self.path / self.BASELINE

    @property
    def verdict(self) -> Path:
        return self.path / self.VERDICT

    @property
    def stack(self) -> Path:
        return self.path / self.STACK

    @property
    def logs(self) -> Path:
        return self.path / self.LOGS

    def is_run(self) -> bool:
        """Does this folder hold a run (its scenario was copied in)?"""
        return self.scenario.is_file()
