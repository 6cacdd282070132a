"""pytest plugin: ``pytest scenarios/`` runs each drill file as one test.

Only YAML files inside a directory named ``scenarios`` are collected (and not
``alerts.yaml``), so the normal test suite is untouched. A drill that does not hold
fails the test with the verdict summary; its run directory is in the message.

Options: ``--drill-target local|compose|external``, ``--drill-bugs a,b``,
``--drill-duration 20s``, ``--drill-seed N``, ``--drill-runs-dir runs``,
``--drill-workers N``. The per-test timeout of the suite does not fit drills: give
``--timeout`` generously (or 0) when running them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

__all__ = ["DrillFailed", "ScenarioFile", "ScenarioItem"]

_SUFFIXES = (".yaml", ".yml")
_NOT_SCENARIOS = {"alerts.yaml", "alerts.yml"}


class DrillFailed(Exception):
    """The drill's verdict was not ``held``; the message is the summary."""


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("faultline", "faultline drills (pytest scenarios/)")
    group.addoption("--drill-target", default=None, choices=("local", "compose", "external"),
                    help="override each scenario's stack")
    group.addoption("--drill-bugs", default="", help="deliberate payment bugs to switch on")
    group.addoption("--drill-duration", default=None, help="override the load duration")
    group.addoption("--drill-seed", type=int, default=None, help="override the seed")
    group.addoption("--drill-runs-dir", default="runs", help="where run directories go")
    group.addoption("--drill-workers", type=int, default=1, help="Locust processes")


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if (file_path.suffix in _SUFFIXES and file_path.name not in _NOT_SCENARIOS
            and "scenarios" in file_path.parent.parts):
        return ScenarioFile.from_parent(parent, path=file_path)
    return None


class ScenarioFile(pytest.File):
    """One scenario file -> one drill item."""

    def collect(self) -> Any:
        yield ScenarioItem.from_parent(self, name=self.path.stem)


class ScenarioItem(pytest.Item):
    """Runs the drill; passes when the verdict held (exit 0)."""

    def runtest(self) -> None:
        from faultline.drill import DrillOptions, run_drill

        opt = self.config.getoption
        bugs = [b for b in str(opt("drill_bugs") or "").split(",") if b.strip()]
        outcome = run_drill(self.path, DrillOptions(
            seed=opt("drill_seed"), duration=opt("drill_duration"), bugs=bugs,
            target=opt("drill_target"), runs_dir=Path(opt("drill_runs_dir")),
            workers=int(opt("drill_workers")), progress=False))
        self.user_properties.append(("exit_code", outcome.exit_code))
        if outcome.run_dir is not None:
            self.user_properties.append(("run_dir", str(outcome.run_dir)))
        if outcome.exit_code != 0:
            where = f"\nrun directory: {outcome.run_dir}" if outcome.run_dir else ""
            raise DrillFailed(f"exit code {outcome.exit_code}\n{outcome.summary}{where}".rstrip())

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException],
                     style: Any = None) -> str:
        if isinstance(excinfo.value, DrillFailed):
            return f"drill {self.name} did not hold: {excinfo.value}"
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"drill: {self.name}"
