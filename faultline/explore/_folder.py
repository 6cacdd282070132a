"""The explore folder: the one place that knows the name of every file an exploration
writes (as :class:`~faultline.drill.RunFolder` does for one drill).

``runs/explore-<UTC timestamp>/``::

    drills/NNN-<name>.yaml   every drawn drill, a normal scenario (and its .log)
    shrink/sNNN-tK-<name>.yaml  every shrink candidate run (try K), and its .log
    runs/<ts>-<name>/        the run folder of each of those drills
    stack/                   the shared stack's logs
    minimal.yaml             the minimal failing scenario (when one was found)
    report.md, explore.json, junit.xml
"""

from __future__ import annotations

import datetime as _dt
import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ExploreFolder"]


@dataclass(frozen=True, slots=True)
class ExploreFolder:
    """The files of one exploration; ``path`` is absolute."""

    path: Path

    DRILLS = "drills"
    SHRINK = "shrink"
    RUNS = "runs"
    STACK = "stack"
    MINIMAL = "minimal.yaml"
    REPORT = "report.md"
    JSON = "explore.json"
    JUNIT = "junit.xml"

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(os.path.abspath(self.path)))

    @classmethod
    def create(cls, runs_dir: str | os.PathLike[str]) -> ExploreFolder:
        """A new ``runs_dir/explore-<UTC timestamp>[-N]/`` with its subfolders."""
        base = Path(os.path.abspath(runs_dir))
        stamp = _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%S")
        n = 1
        while True:
            path = base / (f"explore-{stamp}" if n == 1 else f"explore-{stamp}-{n}")
            try:
                path.mkdir(parents=True)
            except FileExistsError:
                n += 1
                continue
            folder = cls(path)
            for sub in (cls.DRILLS, cls.SHRINK, cls.RUNS, cls.STACK):
                (path / sub).mkdir()
            return folder

    def drill(self, index: int, name: str) -> Path:
        """``drills/NNN-<name>.yaml`` (``name`` without its ``explore-NNN-`` prefix)."""
        short = name.removeprefix(f"explore-{index:03d}-")
        return self.path / self.DRILLS / f"{index:03d}-{short}.yaml"

    def candidate(self, label: str, name: str) -> Path:
        return self.path / self.SHRINK / f"{label}-{name}.yaml"

    def file(self, name: str) -> Path:
        return self.path / name

    @property
    def runs(self) -> Path:
        return self.path / self.RUNS

    @property
    def stack(self) -> Path:
        return self.path / self.STACK

    @property
    def minimal(self) -> Path:
        return self.path / self.MINIMAL
