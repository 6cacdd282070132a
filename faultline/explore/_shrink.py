"""Shrinking a failing drill to a minimal one that still fails the same way.

First delta debugging of the fault list (Zeller's ddmin: no fault at all first — a
race that needs only load —, then halves, quarters, ... of a long list, then each
fault on its own, in one pass: with k tries a needed fault costs k runs to prove, so
drills' short lists go straight to the finest grain); then,
while either gains, shorter (:func:`shorten_edits`) and simpler
(:func:`simplify_edits`). The edits of one pass are tried all at once, and
split in halves when the failure does not survive them all, so that a pass whose edits
all hold costs one candidate, not one per edit.

Concurrency makes a failure probabilistic: a candidate *still fails* when one of
``tries`` runs with seeds derived from the failing drill's seed shows the same failure
(:meth:`Failure.reproduced_by`). The seed that last reproduced it is tried first, and is
the seed written into the minimal scenario. That rule decides which faults are needed.
The cosmetic edits (shorter, simpler) answer another question — is the smaller drill
still a *reliable* reproduction? — so they are kept only when the candidate fails in
:data:`STRICT_RUNS` runs in a row with that very seed (what ``faultline run minimal.yaml
--seed N`` will do): a shrinker that accepts an edit on one lucky run out of three
trades a drill that fails every time for one that fails now and then (the first real
exploration did: its "minimal" drill failed one replay in three). Given the same outcomes, the same
candidates are tried in the same order with the same seeds: shrinking is as
reproducible as the runs it makes.

"Fails in one of k tries" keeps a fault list that fails now and then, and a fault list
that needs a lucky interleaving can pass that bar once. So the drill written out is
**confirmed** last (:meth:`Shrinker.confirm_minimal`): replayed as ``faultline run
minimal.yaml --seed N`` will, ``tries`` times, it must fail the same way in a majority
of them (2 of 3). When it does not, the shrinker walks back through the candidates it
kept — each larger than the next — and the first one that confirms is the minimal
drill; when none does, not even the drill as drawn, the smallest is written out marked
as flaky, with how often it failed (the first real explorations wrote out two "minimal"
drills that failed 0 of 3 replays: 1 of 3 tries had dropped their faults).

The shrinker does not run drills itself: it calls ``run(data, label) -> Trial``, a real
drill in ``faultline explore``, a plain function in the tests.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ._edits import Edit, shorten_edits, simplify_edits
from ._failure import Failure
from ._seeds import try_seeds

__all__ = ["ShrinkResult", "ShrinkStep", "Shrinker", "Trial"]

Data = dict[str, Any]
#: fault lists longer than this are first cut in halves, quarters, ... (ddmin)
COARSE = 8
#: runs with the same seed a cosmetic edit (shorter, simpler) must fail in, all of them
STRICT_RUNS = 2
#: the most candidates :meth:`Shrinker.confirm_minimal` replays, walking back
CONFIRM_CANDIDATES = 4
#: a try that ends like this (the stack was not healthy, the harness failed: a port
#: taken by another process between choosing and binding it) is run once more
INCONCLUSIVE = frozenset({3, 4})


@dataclass
class Trial:
    """One run of a candidate: its seed, exit code and failure (``None``: none), the
    seconds at which each fault really started, and where the run is kept."""

    seed: int
    exit_code: int
    failure: Failure | None = None
    started: list[float | None] = field(default_factory=list)
    run_dir: str | None = None
    file: str | None = None
    seconds: float = 0.0

    def to_json(self, target: Failure) -> dict[str, Any]:
        return {"seed": self.seed, "exit_code": self.exit_code,
                "failed": self.failure.checkers if self.failure else [],
                "same_failure": target.reproduced_by(self.failure),
                "file": self.file, "run_dir": self.run_dir, "seconds": round(self.seconds, 1)}


@dataclass
class ShrinkStep:
    """One candidate: which pass, what changed, whether the failure survived it."""

    number: int
    stage: str
    what: str
    accepted: bool
    faults: int
    load_seconds: float
    users: int
    trials: list[Trial] = field(default_factory=list)


@dataclass
class ShrinkResult:
    """The minimal drill found, the seed it failed with, and how it was found."""

    minimal: Data
    seed: int
    steps: list[ShrinkStep]
    runs: int
    #: why shrinking stopped: ``minimal`` (no edit holds), ``runs`` or ``time`` (budget),
    #: ``not reproduced`` (the drill as drawn did not fail again)
    stopped: str
    #: the replays of the drill written out (``minimal``, ``seed``): how often it failed
    #: the same way, of how many (``(0, 0)``: not confirmed)
    confirmed: tuple[int, int] = (0, 0)
    #: it failed the same way in a majority of its replays
    reliable: bool = False
    #: kept candidates set aside because they failed in a minority of their replays
    walked_back: int = 0


class _Exhausted(Exception):
    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


class Shrinker:
    """Shrinks drills failing like ``target``.

    ``run(data, label)`` runs one candidate (``data["seed"]`` set to the try's seed);
    ``valid(data)`` says whether a candidate is a valid scenario (invalid ones are not
    run); ``max_runs`` bounds the drills shrinking may run, ``deadline`` (monotonic)
    its time; ``on_step`` hears of every candidate decided. ``confirm`` first runs the
    drill as it is: when it does not fail again in ``tries`` runs, there is nothing to
    shrink (``stopped == "not reproduced"``).
    """

    def __init__(self, run: Callable[[Data, str], Trial], target: Failure, seed: int, *,
                 tries: int = 3, max_runs: int = 40, deadline: float | None = None,
                 valid: Callable[[Data], bool] = lambda data: True,
                 on_step: Callable[[ShrinkStep], None] = lambda step: None,
                 clock: Callable[[], float] = time.monotonic, confirm: bool = False) -> None:
        if tries < 1:
            raise ValueError("tries must be at least 1")
        self.run = run
        self.target = target
        self.seeds = try_seeds(seed, tries)
        self.good_seed = seed
        self.max_runs = max_runs
        self.deadline = deadline
        self.valid = valid
        self.on_step = on_step
        self.clock = clock
        self.confirm = confirm
        self.runs = 0
        self.steps: list[ShrinkStep] = []
        self.started: list[float | None] = []
        self.best: Data | None = None
        self.tries = tries
        #: every kept candidate with the seed that reproduced it, the drill as drawn first
        self.kept: list[tuple[Data, int]] = []
        self._rejected: set[str] = set()

    # ------------------------------------------------------------ one candidate
    def _step(self, stage: str, what: str, data: Data) -> ShrinkStep:
        return ShrinkStep(len(self.steps) + 1, stage, what, False, len(data.get("faults") or []),
                          float(data["load"]["duration"]), int(data["load"]["users"]))

    def _done(self, step: ShrinkStep) -> None:
        if step.trials:
            self.steps.append(step)
            self.on_step(step)

    def _try(self, step: ShrinkStep, data: Data, seed: int, label: str, *, cap: int) -> Trial:
        """One run of ``data`` with ``seed``; a try that says nothing about the candidate
        (:data:`INCONCLUSIVE`) is run once more while the runs stay under ``cap``."""
        self.runs += 1
        trial = self.run({**copy.deepcopy(data), "seed": seed}, label)
        step.trials.append(trial)
        if trial.exit_code in INCONCLUSIVE and self.runs < cap:
            # the stack, not the candidate, failed: this try says nothing
            self.runs += 1
            trial = self.run({**copy.deepcopy(data), "seed": seed}, label + "r")
            step.trials.append(trial)
        return trial

    def _fails(self, data: Data, stage: str, what: str, *, strict: bool = False) -> bool:
        """Run ``data`` up to ``tries`` times; True when one run fails like the target.
        ``strict`` (cosmetic edits): True only when it fails twice in a row with the seed
        that last reproduced the failure — the seed the replay command will use. A
        candidate that already failed to reproduce is not run again."""
        key = json.dumps([data, strict], sort_keys=True, default=str)
        if key in self._rejected:
            return False
        step = self._step(stage, what, data)
        order = ([self.good_seed] * STRICT_RUNS if strict else
                 [self.good_seed, *(s for s in self.seeds if s != self.good_seed)])
        try:
            for j, seed in enumerate(order):
                if self.runs >= self.max_runs:
                    raise _Exhausted("runs")
                if self.deadline is not None and self.clock() >= self.deadline:
                    raise _Exhausted("time")
                trial = self._try(step, data, seed, f"s{step.number:03d}-t{j + 1}",
                                  cap=self.max_runs)
                reproduced = self.target.reproduced_by(trial.failure)
                if strict and not reproduced:
                    break
                if reproduced and (not strict or j == len(order) - 1):
                    step.accepted = True
                    self.good_seed = seed
                    self.started = list(trial.started)
                    self.best = copy.deepcopy(data)  # every kept candidate is smaller
                    self.kept.append((copy.deepcopy(data), seed))
                    return True
            self._rejected.add(key)
            return False
        finally:
            self._done(step)

    def _try_all(self, data: Data, edits: Sequence[Edit], stage: str) -> tuple[Data, bool]:
        """Apply as many of ``edits`` as the failure survives: all at once, else each
        half in turn (recursively). Returns the new drill and whether anything held."""
        if not edits:
            return data, False
        candidate, names = data, list[str]()
        for edit in edits:
            changed = edit.apply(candidate)
            if changed is not None:
                candidate, names = changed, [*names, edit.what]
        if not names or candidate == data or not self.valid(candidate):
            if len(edits) == 1:
                return data, False
        elif self._fails(candidate, stage, "; ".join(names), strict=True):
            return candidate, True
        if len(edits) == 1:
            return data, False
        half = len(edits) // 2
        data, first = self._try_all(data, edits[:half], stage)
        data, second = self._try_all(data, edits[half:], stage)
        return data, first or second

    # ------------------------------------------------------------ passes
    def _faults(self, data: Data) -> tuple[Data, bool]:
        """Delta debugging of the fault list: none at all first; halves, quarters, ...
        while the list is long (ddmin); then each fault on its own, in order."""
        faults = list(data.get("faults") or [])
        if not faults:
            return data, False

        def with_faults(keep: list[int]) -> Data:
            return {**data, "faults": [copy.deepcopy(faults[i]) for i in keep]}

        def removed(keep: list[int]) -> str:
            if not keep:
                return "remove every fault"
            gone = [str(i + 1) for i in range(len(faults)) if i not in keep]
            return f"remove fault{'s' if len(gone) > 1 else ''} {', '.join(gone)}"

        def fails(keep: list[int]) -> bool:
            return self._fails(with_faults(keep), "faults", removed(keep))

        if fails([]):
            return with_faults([]), True
        keep = list(range(len(faults)))
        n = 2
        while len(keep) > COARSE:  # ddmin's coarse steps pay off on long lists only
            size = -(-len(keep) // n)
            chunks = [keep[i:i + size] for i in range(0, len(keep), size)]
            found = next((c for c in chunks if n > 2 and fails(c)), None)
            if found is not None:
                keep, n = found, 2
                continue
            rest = next((r for c in chunks if (r := [i for i in keep if i not in c])
                         and fails(r)), None)
            if rest is not None:
                keep, n = rest, max(n - 1, 2)
            elif n >= len(keep):
                break
            else:
                n = min(len(keep), n * 2)
        # the finest grain: each fault once (a needed fault costs ``tries`` runs to
        # prove, an unneeded one usually a single run), without starting over
        i = 0
        while i < len(keep) and len(keep) > 1:
            rest = keep[:i] + keep[i + 1:]
            if fails(rest):
                keep = rest
            else:
                i += 1
        return with_faults(keep), len(keep) < len(faults)

    def _shorten(self, data: Data, bold: bool) -> tuple[Data, bool]:
        return self._try_all(data, shorten_edits(data, bold=bold), "shorter")

    def _simplify(self, data: Data, bold: bool) -> tuple[Data, bool]:
        started = self.started if len(self.started) == len(data.get("faults") or []) else []
        return self._try_all(data, simplify_edits(data, started, bold=bold), "simpler")

    def _replays(self, data: Data, seed: int, what: str, until: int) -> tuple[int, int]:
        """``data`` run with ``seed`` up to ``tries`` times, as its replay command will
        (stopping once a majority is decided, or when ``self.runs`` reaches ``until``):
        ``(failed the same way, runs)``."""
        need = self.tries // 2 + 1
        step = self._step("replay", what, data)
        failed = runs = 0
        while (runs < self.tries and failed < need and runs - failed <= self.tries - need
               and self.runs < until):
            trial = self._try(step, data, seed, f"s{step.number:03d}-r{runs + 1}", cap=until)
            runs += 1
            failed += self.target.reproduced_by(trial.failure)
        step.accepted = failed >= need
        self._done(step)
        return failed, runs

    def _walk_back(self) -> list[tuple[Data, int]]:
        """The kept candidates to confirm, in order: the smallest; the first with its
        fault count (before the cosmetic edits, which were kept on 2 runs of 2); then,
        for each larger fault count, the smallest kept with it (a fault dropped on 1 try
        of k is the weak link); at most :data:`CONFIRM_CANDIDATES`, the drill as drawn
        always last."""
        if not self.kept:
            return []

        def count(item: tuple[Data, int]) -> int:
            return len(item[0].get("faults") or [])

        by_count: dict[int, list[tuple[Data, int]]] = {}
        for item in self.kept:
            by_count.setdefault(count(item), []).append(item)
        least = count(self.kept[-1])
        order = [self.kept[-1], by_count[least][0],
                 *(by_count[c][-1] for c in sorted(by_count) if c > least)]
        chain: list[tuple[Data, int]] = []
        for item in order:
            if not any(item[0] == d for d, _ in chain):
                chain.append(item)
        if len(chain) > CONFIRM_CANDIDATES:
            drawn = self.kept[0]
            chain = chain[:CONFIRM_CANDIDATES - 1]
            if not any(drawn[0] == d for d, _ in chain):
                chain.append(drawn)
        return chain

    def confirm_minimal(self, result: ShrinkResult, *,
                        budget: int | None = None) -> ShrinkResult:
        """``result``'s drill replayed ``tries`` times with its seed; when it fails the
        same way in fewer than a majority, the kept candidates before it, from the
        smallest back to the drill as drawn (at most :data:`CONFIRM_CANDIDATES`, at most
        ``budget`` runs, default ``CONFIRM_CANDIDATES * tries``): the first that does
        is the minimal drill. None does: the smallest, marked not reliable."""
        until = self.runs + (budget if budget is not None else CONFIRM_CANDIDATES * self.tries)
        need = self.tries // 2 + 1
        smallest = None
        chain = self._walk_back() or [({k: v for k, v in result.minimal.items() if k != "seed"},
                                       result.seed)]  # nothing kept: the budget ran out first
        for n, (data, seed) in enumerate(chain):
            if self.runs >= until:
                break
            what = ("the minimal drill, as its replay command runs it" if n == 0 else
                    f"walking back: kept candidate with {len(data.get('faults') or [])} "
                    f"faults, {float(data['load']['duration']):g}s of load")
            failed, runs = self._replays(data, seed, what, until)
            if smallest is None:
                smallest = (failed, runs)
            if failed >= need:
                return dataclasses.replace(result, minimal={**data, "seed": seed}, seed=seed,
                                           runs=self.runs, confirmed=(failed, runs),
                                           reliable=True, walked_back=n)
        return dataclasses.replace(result, runs=self.runs, confirmed=smallest or (0, 0),
                                   reliable=False, walked_back=0)

    def shrink(self, data: Data, *, started: Sequence[float | None] = (),
               rounds: int = 6) -> ShrinkResult:
        """The smallest drill found from ``data`` (which failed like the target with
        ``seed``; ``started`` are its faults' real start times)."""
        self.started = list(started)
        self.best = current = copy.deepcopy(data)
        self.kept = [] if self.confirm else [(copy.deepcopy(data), self.good_seed)]
        stopped = "minimal"
        try:
            if self.confirm and not self._fails(current, "confirm", "the drill as drawn"):
                return ShrinkResult(minimal={**current, "seed": self.good_seed},
                                    seed=self.good_seed, steps=self.steps, runs=self.runs,
                                    stopped="not reproduced")
            # which faults are needed is decided once: shorter windows and milder values
            # rarely make a needed fault unneeded, and each ddmin costs n + 1 candidates
            current, _ = self._faults(current)
            for n in range(rounds):
                # the first round jumps to the shortest and mildest values; later
                # rounds halve what the failure did not survive losing at once
                current, shorter = self._shorten(current, bold=n == 0)
                current, simpler = self._simplify(current, bold=n == 0)
                if n > 0 and not (shorter or simpler):
                    break
        except _Exhausted as exc:  # the budget ran out inside a pass: the last kept one
            stopped, current = exc.why, self.best
        return ShrinkResult(minimal={**current, "seed": self.good_seed}, seed=self.good_seed,
                            steps=self.steps, runs=self.runs, stopped=stopped)
