"""``faultline explore``: draw drills, run them on one reused stack, shrink a failure.

The loop is Jepsen's randomised nemesis plus Hypothesis's shrinking, on a real stack:
drill ``i`` is drawn from the seed (:class:`DrillGenerator`), written as an ordinary
scenario file and run by the ordinary engine (:func:`faultline.drill.run_drill`) with
one :class:`~faultline.drill.StackPool` — the stack is started once and reused while
drills leave it healthy; the pool replaces it after a drill ended 3 or 4. The first
drill that fails (exit 1 or 2) is shrunk (:class:`Shrinker`) to ``minimal.yaml``, and
the exploration ends: one finding, explained, beats ten unexplained ones.

Shrinking runs every candidate on a **fresh stack**, as ``faultline run minimal.yaml``
will: on a reused stack a drill inherits what the one before left behind (a breaker
still open, a pool of broken connections, a backlog), and a candidate could "fail"
because of its predecessor — the first real exploration did exactly that, and its
"minimal" drill never failed again on its own. The drill as drawn is first run again
on a fresh stack; when it does not fail in ``--tries`` runs, the finding is reported as
not reproduced on its own (it needed the stack's history) and is not shrunk.

Exit code: the finding's (1 or 2). Without one: the drills that could not be judged
(3, 4) folded by the verdict's precedence (nothing was found, but not everything was
looked at); 5 when every drill was vacuous (no drawn fault touched the system); else 0.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from faultline.drill import DrillOptions, StackPool, run_drill
from faultline.scenario import ScenarioError, parse_scenario
from faultline.system import SystemProfile

from ._draw import Drill, DrillGenerator
from ._failure import STEADY, Failure
from ._folder import ExploreFolder
from ._progress import ExploreProgress
from ._shrink import Shrinker, ShrinkResult, Trial
from ._space import FaultSpace

__all__ = ["DrillRun", "ExploreOptions", "ExploreResult", "Explorer", "Finding", "exit_code",
           "fold_codes"]

#: drills explored when neither a budget nor a time is given
DEFAULT_BUDGET = 20
EXIT_INTERRUPTED = 130


def fold_codes(codes: list[int]) -> int:
    """Several verdicts' exit codes as one, by the engine's precedence."""
    from faultline.checks import invocation_exit_code

    return int(invocation_exit_code(codes))


@dataclass
class ExploreOptions:
    """What ``faultline explore`` was asked (the CLI's flags)."""

    seed: int = 1
    budget: int | None = None
    #: seconds of exploration (no new drill starts after it); shrinking is bounded by
    #: ``shrink_runs``
    time_limit: float | None = None
    bugs: list[str] = field(default_factory=list)
    target: str = "local"
    runs_dir: Path = Path("runs")
    junit: Path | None = None
    tries: int = 3
    shrink_runs: int = 40
    progress: bool = True
    err: TextIO | None = None


@dataclass
class DrillRun:
    """One explored drill and its verdict."""

    index: int
    name: str
    file: str
    seed: int
    items: tuple[str, ...]
    exit_code: int
    reason: str
    failure: Failure | None
    run_dir: str | None
    seconds: float
    started: list[float | None] = field(default_factory=list)


@dataclass
class Finding:
    """A failing drill, shrunk."""

    drill: DrillRun
    original: dict[str, Any]
    #: the minimal drill as written to ``minimal.yaml``
    minimal: dict[str, Any]
    shrink: ShrinkResult
    minimal_file: Path
    replay: str

    @property
    def reproduced(self) -> bool:
        """Did the drill fail again on a fresh stack (and so was shrunk)?"""
        return self.shrink.stopped != "not reproduced"


@dataclass
class ExploreResult:
    exit_code: int
    folder: ExploreFolder | None
    seed: int
    drills: list[DrillRun] = field(default_factory=list)
    finding: Finding | None = None
    seconds: float = 0.0
    interrupted: bool = False
    stopped: str = ""


class Explorer:
    """One exploration of ``profile`` over ``space`` (already narrowed by a space file
    and restricted to what the running stack has)."""

    def __init__(self, profile: SystemProfile, space: FaultSpace, opts: ExploreOptions,
                 folder: ExploreFolder, pool: StackPool, system: str | None = None) -> None:
        self.profile = profile
        self.space = space
        self.opts = opts
        self.folder = folder
        self.pool = pool
        self.generator = DrillGenerator(space, opts.seed, stack=opts.target, system=system)
        self.ui = ExploreProgress(opts.err, live=opts.progress)
        self.result = ExploreResult(exit_code=0, folder=folder, seed=opts.seed)
        self.runs = 0

    # ------------------------------------------------------------ running files
    def _run(self, path: Path, *, fresh: bool = False) -> tuple[int, Any, str | None, float]:
        """Run one scenario file (``fresh``: on its own stack); its output goes to
        ``<file>.log`` beside it."""
        began = time.monotonic()
        self.runs += 1
        self.ui.update(drills=self.runs)
        with path.with_suffix(".log").open("w") as log:
            outcome = run_drill(path, DrillOptions(
                bugs=list(self.opts.bugs), target=self.opts.target,
                runs_dir=self.folder.runs, profile=self.profile, progress=False,
                out=log, err=log), pool=None if fresh else self.pool)
        run_dir = str(outcome.run_dir) if outcome.run_dir is not None else None
        return outcome.exit_code, outcome.verdict, run_dir, time.monotonic() - began

    @staticmethod
    def _judged(code: int, verdict: Any) -> tuple[Failure | None, list[float | None], str]:
        """The failure a verdict shows (drill results first, then the steady-state
        probe's), when each fault really started, and the verdict's reason."""
        if verdict is None:
            return None, [], "no verdict (see the drill's log)"
        faults = getattr(verdict, "faults", None) or verdict.info.get("faults", [])
        started = [f.get("start_s") for f in faults]
        probe = [{**r.to_dict(), "name": f"{r.name}{STEADY}"}
                 for r in getattr(verdict, "steady_state", [])]
        return Failure.of(code, [*verdict.results, *probe]), started, str(verdict.reason)

    def valid(self, data: dict[str, Any]) -> bool:
        """Does ``data`` load as a scenario of this system?"""
        try:
            parse_scenario(Drill(0, data).text(), "<candidate>", profile=self.profile)
        except ScenarioError:
            return False
        return True

    # ------------------------------------------------------------ explore
    def explore_one(self, index: int) -> DrillRun:
        drill = self.generator.draw(index)
        path = self.folder.drill(index, drill.name)
        path.write_text(drill.text())
        self.ui.update(iteration=index, current=drill.name)
        code, verdict, run_dir, seconds = self._run(path)
        failure, started, reason = self._judged(code, verdict)
        run = DrillRun(index=index, name=drill.name, file=str(path), seed=drill.seed,
                       items=drill.items, exit_code=code, reason=reason, failure=failure,
                       run_dir=run_dir, seconds=round(seconds, 1), started=started)
        self.result.drills.append(run)
        return run

    def shrink(self, run: DrillRun) -> Finding:
        assert run.failure is not None
        original = self.generator.draw(run.index).data
        target = run.failure

        def candidate(data: dict[str, Any], label: str) -> Trial:
            data = {**data, "name": f"shrink-{label}-{run.index:03d}"}
            path = self.folder.candidate(label, data["name"])
            path.write_text(Drill(run.index, data, header=(
                f"shrink candidate {label} of drill {run.index} ({run.name})",)).text())
            self.ui.update(current=f"{label}: {len(data.get('faults') or [])} faults, "
                                   f"{data['load']['duration']:g}s")
            code, verdict, run_dir, seconds = self._run(path, fresh=True)
            failure, started, _ = self._judged(code, verdict)
            return Trial(seed=int(data["seed"]), exit_code=code, failure=failure,
                         started=started, run_dir=run_dir, file=str(path), seconds=seconds)

        def on_step(step: Any) -> None:
            kept = sum(1 for s in shrinker.steps if s.accepted)
            self.ui.update(steps=len(shrinker.steps), accepted=kept,
                           size=f"{step.faults} faults, {step.load_seconds:g}s")

        self.ui.update(phase="shrink")
        self.pool.close()  # candidates run on their own stacks; the shared one is done
        shrinker = Shrinker(candidate, target, run.seed, tries=self.opts.tries,
                            max_runs=self.opts.shrink_runs, valid=self.valid, on_step=on_step,
                            confirm=True)
        result = shrinker.shrink(original, started=run.started)
        if result.stopped != "not reproduced":
            self.ui.update(phase="confirm")
            result = shrinker.confirm_minimal(result)
        minimal = self._minimal(result, run, target)
        self.folder.minimal.write_text(minimal.text())
        return Finding(drill=run, original=original, minimal=minimal.data, shrink=result,
                       minimal_file=self.folder.minimal, replay=self.replay(result.seed))

    def _minimal(self, result: ShrinkResult, run: DrillRun, target: Failure) -> Drill:
        from ._render import describe_fault, slug

        data = copy.deepcopy(result.minimal)
        data["name"] = f"explore-minimal-{slug(target.checker)}"
        bugs = f" with --bugs {','.join(self.opts.bugs)}" if self.opts.bugs else ""
        faults = "; ".join(describe_fault(f) for f in data.get("faults") or []) or "no fault"
        if result.stopped == "not reproduced":
            data["description"] = (
                f"Found by faultline explore --seed {self.opts.seed}{bugs}: drill {run.index} "
                f"failed {target.describe()} on a stack earlier drills had run on, but not "
                f"again on a fresh stack in {result.runs} runs: the drill as drawn, not "
                f"shrunk. {faults}.")
            first = f"NOT REPRODUCED on a fresh stack: drill {run.index} as drawn"
        else:
            failed, replays = result.confirmed
            how = f"failed {failed} of {replays} replays"
            data["description"] = (
                f"Found by faultline explore --seed {self.opts.seed}{bugs}: drill {run.index} "
                f"({run.name}) failed {target.describe()}; shrunk in {result.runs} runs to: "
                f"{faults}; {how} with its seed"
                + ("." if result.reliable else
                   ": FLAKY, no candidate, not even the drill as drawn, failed in most "
                   "replays."))
            first = (f"minimal failing drill: fails {target.describe()} ({how})"
                     if result.reliable else
                     f"FLAKY minimal drill: fails {target.describe()} now and then ({how})")
        return Drill(run.index, data, header=(first, f"replay: {self.replay(result.seed)}"))

    def replay(self, seed: int) -> str:
        import shlex

        parts = ["faultline", "run", str(self._shown(self.folder.minimal)), "--seed", str(seed)]
        if self.opts.bugs:
            parts += ["--bugs", ",".join(self.opts.bugs)]
        if self.opts.target != "local":
            parts += ["--target", self.opts.target]
        return shlex.join(parts)

    @staticmethod
    def _shown(path: Path) -> Path:
        try:
            return path.relative_to(Path.cwd())
        except ValueError:
            return path

    def _more(self, index: int, began: float) -> bool:
        if self.opts.budget is not None and index > self.opts.budget:
            self.result.stopped = "budget"
            return False
        if self.opts.time_limit is not None and time.monotonic() - began >= self.opts.time_limit:
            self.result.stopped = "time"
            return False
        return True

    def run(self, on_drill: Callable[[DrillRun], None] = lambda run: None) -> ExploreResult:
        """Explore until the budget or the time is spent, or a failure is found."""
        began = time.monotonic()
        budget = self.opts.budget
        self.ui.update(budget=str(budget) if budget is not None else "time")
        self.ui.start()
        try:
            index = 1
            while self._more(index, began):
                run = self.explore_one(index)
                on_drill(run)
                self.ui.say(f"drill {index} {run.name}: exit {run.exit_code} ({run.reason})")
                if run.exit_code == EXIT_INTERRUPTED:
                    self.result.interrupted = True
                    break
                if run.failure is not None:
                    self.ui.update(failures=1)
                    self.ui.say(f"drill {index} failed {run.failure.describe()}: shrinking "
                                f"(up to {self.opts.shrink_runs} runs, {self.opts.tries} "
                                "tries per candidate)")
                    self.result.finding = self.shrink(run)
                    self.result.stopped = "failure"
                    break
                index += 1
        except KeyboardInterrupt:
            self.result.interrupted = True
        finally:
            self.ui.stop()
        self.result.seconds = round(time.monotonic() - began, 1)
        self.result.exit_code = self.exit_code()
        return self.result

    def exit_code(self) -> int:
        r = self.result
        return exit_code([d.exit_code for d in r.drills],
                         finding=r.finding.drill.exit_code if r.finding else None,
                         interrupted=r.interrupted)


def exit_code(codes: list[int], *, finding: int | None = None,
              interrupted: bool = False) -> int:
    """The exploration's exit code from its drills' codes (module docstring)."""
    if interrupted:
        return EXIT_INTERRUPTED
    if finding is not None:
        return finding
    if not codes:
        return 4  # nothing was explored: nothing was checked
    unjudged = [c for c in codes if c not in (0, 5)]
    if unjudged:
        return fold_codes(unjudged)
    return 5 if all(c == 5 for c in codes) else 0
