"""The drill: one scenario from stack to verdict, as a sequence of phases.

prepare (run folder, sweep what killed runs left) -> stack (started, or reused from the
pool; the fault proxy reseeded with the drill's seed) -> steady state (a probe load;
the stack must serve it and keep its invariants) -> baseline snapshot -> load + fault
timeline + metrics scraper -> heal -> settle (until the system says it has converged,
at most the scenario's ``settle``) -> final snapshot -> the judge -> reports.

Every exit path heals every fault and stops the load; SIGTERM unwinds like Ctrl-C.
Files go through :class:`~faultline.drill.RunFolder`; the verdict comes from
:func:`~faultline.drill.judge`, which reads only those files.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from faultline.drill._judge import DrillRecord, judge
from faultline.drill._metrics import MetricsScraper
from faultline.drill._pool import StackPool
from faultline.drill._progress import Progress
from faultline.drill._registry import RunRegistry
from faultline.drill._store import RunFolder
from faultline.history import NemesisLog, merge_histories
from faultline.load import LoadError, LocustMaster, LocustRun
from faultline.stack import StackError, StackInfo, write_private
from faultline.system import DictSink

__all__ = ["DrillInterrupted", "DrillOptions", "DrillOutcome", "run_drill"]

#: the probe load of the steady-state phase (the scenario's mix, plain traffic)
PROBE = {"profile": "steady", "users": 2, "duration": 2.0}
#: the invariants the steady state must keep (the delivery ones need settling first)
STEADY_INVARIANTS = ("conservation", "balanced_entries", "non_negative",
                     "acknowledged_exactly_once")
#: seconds without any change in what keeps the stack from converging: stop settling
STALL = 10.0
#: seconds between two looks at whether the stack has settled
SETTLE_POLL = 0.25
#: exit code of a drill stopped by Ctrl-C or SIGTERM (the shell's convention)
EXIT_INTERRUPTED = 130


class DrillInterrupted(BaseException):
    """SIGTERM arrived: unwind like Ctrl-C (every ``finally`` runs)."""


@dataclass
class DrillOptions:
    """What the CLI (or the pytest plugin, or exploration) asks of one drill."""

    seed: int | None = None
    duration: str | float | None = None
    junit: Path | None = None
    workers: int = 1
    #: run the drill's load as a Locust master for ``faultline load-worker``s elsewhere
    #: (the steady-state probe stays local); only this runner decides the verdict
    master: LocustMaster | None = None
    bugs: list[str] = field(default_factory=list)
    target: str | None = None
    runs_dir: Path = Path("runs")
    #: the system to drill instead of the scenario's (a profile, or its name)
    profile: Any = None
    progress: bool = True
    #: wait the scenario's whole ``settle`` instead of stopping once the system says it
    #: has converged (how drills settled before; kept for benchmarks/drill.py)
    fixed_settle: bool = False
    client_timeout: float = 2.0
    out: TextIO | None = None
    err: TextIO | None = None


@dataclass
class DrillOutcome:
    """Exit code, the run directory (None when the scenario was invalid) and the verdict."""

    exit_code: int
    run_dir: Path | None
    verdict: Any = None
    summary: str = ""


@contextlib.contextmanager
def _sigterm_unwinds() -> Iterator[None]:
    """SIGTERM raises :class:`DrillInterrupted` in the main thread while the drill runs."""
    def handler(signum: int, frame: Any) -> None:
        raise DrillInterrupted()

    try:
        old = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread (e.g. a test runner's worker thread)
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


class _Probe:
    """What triggered faults read: the scraper's latest metrics and the load's count."""

    def __init__(self, scraper: MetricsScraper, names: dict[str, str]) -> None:
        self.scraper = scraper
        self.names = names
        self.done = 0

    def metric(self, name: str) -> float | None:
        return self.scraper.metric(self.names.get(name, name))

    def operations(self) -> int:
        return self.done


class _Drill:
    """One run; the phases are methods so that :meth:`run` reads as the flow above."""

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Time one phase into ``drill.json`` (what a drill costs beyond its load)."""
        began = time.monotonic()
        try:
            yield
        finally:
            self.record.phases[name] = round(time.monotonic() - began, 3)

    def __init__(self, path: Path, scn: Any, profile: Any, opts: DrillOptions,
                 pool: StackPool) -> None:
        self.path = path
        self.scn = scn
        self.profile = profile
        self.opts = opts
        self.pool = pool
        self.out = opts.out or sys.stdout
        self.ui = Progress(scn.name, opts.err, live=opts.progress)
        self.target = opts.target or scn.stack
        self.folder: RunFolder | None = None
        self.registry = RunRegistry(Path(os.path.abspath(opts.runs_dir)) / ".active")
        self.record = DrillRecord(system=profile.name, target=self.target,
                                  bugs=list(opts.bugs))
        self.launcher: Any = None
        self.info: StackInfo | None = None
        self.load: LocustRun | None = None
        self.timeline: Any = None
        self.scraper: MetricsScraper | None = None
        self.nemesis_log = NemesisLog()
        self.load_t0: float | None = None
        self.proxy_events_from: int | None = None

    # ------------------------------------------------------------ phases
    def prepare(self) -> RunFolder:
        folder = self.folder = RunFolder.create(self.opts.runs_dir, self.scn.name)
        shutil.copyfile(self.path, folder.scenario)
        folder.file(RunFolder.SEED).write_text(f"{self.scn.seed}\n")
        self.nemesis_log.path = folder.file(RunFolder.NEMESIS)
        self.record.replay = self.replay_command()
        for line in self.registry.sweep():
            self.ui.say(f"swept a killed run: {line}")
        self.registry.register(run_dir=str(folder.path))
        return folder

    def start_stack(self) -> StackInfo:
        assert self.folder is not None
        self.ui.say(f"stack: {self.profile.name} on {self.target}"
                    + (f" with bugs {','.join(self.opts.bugs)}" if self.opts.bugs else ""))
        began = time.monotonic()
        self.launcher, info, fresh = self.pool.acquire(self.profile, self.target,
                                                       self.opts.bugs, self.folder.path,
                                                       self.ui.say)
        self.info = info
        self.ui.say(f"stack {'ready' if fresh else 'reused'} in "
                    f"{time.monotonic() - began:.1f}s: {info.base_url}")
        self.registry.register(proxy_url=info.proxy_url)
        write_private(self.folder.stack, _dumps(info.workload_data))
        self._reseed()
        return info

    def _reseed(self) -> None:
        """Every random decision of the fault proxy now follows this drill's seed."""
        assert self.info is not None
        assert self.folder is not None
        if not self.info.proxy_url:
            return
        from faultline.proxy.client import ProxyAPIError, ProxyClient

        client = ProxyClient(self.info.proxy_url)
        try:
            # the events from here on are this drill's (the proxy may serve many drills)
            self.proxy_events_from = client.events(since=2**62)[1]
            client.set_seed(self.scn.seed, label=self.folder.path.name)
        except ProxyAPIError as exc:
            self.ui.say(f"the fault proxy cannot be reseeded ({exc}): its decisions will "
                        "not replay with --seed")

    def _keep_proxy_events(self) -> None:
        """This drill's slice of the fault proxy's events (seed, toxics, what fired)."""
        if self.info is None or self.folder is None or self.proxy_events_from is None:
            return
        from faultline.history import write_jsonl
        from faultline.proxy.client import ProxyAPIError, ProxyClient

        try:
            events, _ = ProxyClient(self.info.proxy_url).events(since=self.proxy_events_from)
        except (ProxyAPIError, OSError) as exc:
            self.ui.say(f"could not read the fault proxy's events: {exc}")
            return
        write_jsonl(self.folder.file(RunFolder.PROXY_EVENTS), events)

    def _locust(self, load: dict[str, Any], history_dir: Path, probe: bool = False) -> LocustRun:
        assert self.info is not None
        assert self.folder is not None
        run = LocustRun(host=self.info.base_url, locustfile=self.profile.workload.locustfile,
                        load=load, stack_file=self.folder.stack, history_dir=history_dir,
                        seed=self.scn.seed, run_tag=_tag(self.folder) + ("p" if probe else ""),
                        probe=probe,
                        workers=1 if probe else self.opts.workers,
                        master=None if probe else self.opts.master,
                        client_timeout=self.opts.client_timeout,
                        log_file=self.folder.path / f"{history_dir.name}-locust.log")
        run.start()
        self.registry.register(groups=[run.pid] if run.pid else [])
        return run

    def snapshot(self) -> dict[str, Any]:
        """The system's state in memory (the steady-state probe's: small)."""
        assert self.info is not None
        sink = DictSink()
        self.profile.snapshot(self.info, sink)
        return sink.state

    def snapshot_to(self, path: Path) -> None:
        """The system's state streamed to disk, table by table (a soak's is big)."""
        from faultline.checks import StateWriter

        assert self.info is not None
        with StateWriter(path) as writer:
            self.profile.snapshot(self.info, writer)

    def steady_state(self) -> bool:
        """A probe load must complete with few errors, and the ledger invariants must
        hold on what it did; a broken invariant here is a violation (exit 1), not an
        unhealthy stack (exit 3)."""
        from faultline.checks import CheckContext, run_checks
        from faultline.history import is_error, read_jsonl

        assert self.folder is not None
        assert self.info is not None
        before = self.snapshot()
        probe_dir = self.folder.path / RunFolder.PROBE
        load = {**PROBE, "mix": dict(self.scn.load.mix or {}), "params": dict(self.scn.load.params)}
        run = self.load = self._locust(load, probe_dir, probe=True)
        run.wait()
        self.load = None
        merge_histories(run.history_files(), out=probe_dir / RunFolder.HISTORY)
        history = read_jsonl(probe_dir / RunFolder.HISTORY)
        problems = self.settle(10.0)
        state = self.snapshot()
        done = [h for h in history if h["type"] != "invoke"]
        errors = [h for h in done if is_error(h["type"], h.get("status"))]
        wanted = [n for n in STEADY_INVARIANTS if n in self.scn.checks]
        results = run_checks(wanted, history, state, CheckContext(baseline=before))
        self.record.steady_results = [r.to_dict() for r in results]
        broken = [r.name for r in results if r.valid is False]
        if broken:
            self.record.steady_message = ("invariants broken before any fault: "
                                          + ", ".join(broken))
            return False
        if not done:
            self.record.steady_ok = False
            self.record.steady_message = ("the probe load completed no operation (see "
                                          f"{self.folder.path / 'probe-locust.log'})")
            return False
        if len(errors) > max(1, len(done) // 20):
            self.record.steady_ok = False
            self.record.steady_message = (f"the probe load saw {len(errors)} errors in "
                                          f"{len(done)} operations")
            return False
        unknown = [r.name for r in results if r.valid is not True]
        if unknown:
            self.record.steady_ok = False
            self.record.steady_message = ("invariants could not be checked before any "
                                          f"fault: {', '.join(unknown)}")
            return False
        self.record.steady_message = (f"{len(done)} probe operations, invariants hold"
                                      + (f"; not settled: {'; '.join(problems)}"
                                         if problems else ""))
        return True

    def settle(self, limit: float) -> list[str]:
        """Wait until the system says it has converged (at most ``limit`` seconds, and
        not longer than :data:`STALL` without progress); returns what is left."""
        assert self.info is not None
        began = time.monotonic()
        if self.opts.fixed_settle:
            time.sleep(limit)
            return list(self.profile.settle_status(self.info))
        problems: list[str] = list(self.profile.settle_status(self.info))
        changed = began
        while problems and time.monotonic() - began < limit:
            if time.monotonic() - changed > STALL:
                break  # no progress for a while: waiting longer will not converge it
            time.sleep(SETTLE_POLL)
            self._progress_line("settle")
            now = list(self.profile.settle_status(self.info))
            if now != problems:
                problems, changed = now, time.monotonic()
        return problems

    def drive(self) -> None:
        """Load, the fault timeline and the metrics scraper, until the load ends."""
        from faultline.alerts import AlertEvaluator, load_rules
        from faultline.faults import ActionNemesis, FaultTimeline, NetworkNemesis, ProcessNemesis

        assert self.info is not None
        assert self.folder is not None
        info, scn = self.info, self.scn
        rules = self._alert_rules()
        self.scraper = MetricsScraper(
            info.metrics_urls, self.folder.file(RunFolder.METRICS),
            AlertEvaluator(load_rules(rules)) if rules is not None else None,
            prefix=self.profile.metric_prefix,
            breaker_metric=self.profile.metrics.get("breaker_state"))
        if any(f.when is not None for f in scn.faults):
            self.scraper.fast.set()
        self.scraper.start()
        nemeses: dict[str, Any] = {}
        if info.proxy_url:
            from faultline.proxy.client import ProxyClient

            nemeses["toxic"] = NetworkNemesis(ProxyClient(info.proxy_url), info.hops,
                                              self.nemesis_log)
        if self.launcher.controls:
            nemeses["process"] = ProcessNemesis(self.launcher, self.nemesis_log)
        if self.profile.actions:
            nemeses["action"] = ActionNemesis(self.profile.actions, info, self.nemesis_log)
        self._check_can_inject(nemeses)
        probe = _Probe(self.scraper, dict(self.profile.metrics))
        self.timeline = FaultTimeline(scn.faults, nemeses=nemeses, log=self.nemesis_log,
                                      probe=probe, load_duration=scn.load.duration)
        master = self.opts.master
        if master is not None:
            if not master.loopback:
                self.ui.say(f"the Locust master listens on {master.bind_host}:"
                            f"{master.bind_port}: unauthenticated, unencrypted; anyone who "
                            "reaches it can join the drill")
            self.ui.say(f"waiting up to {master.workers_timeout:g}s for {master.expect_workers}"
                        f" load worker(s): faultline load-worker --system {self.profile.name} "
                        f"--master-host HOST --master-port {master.bind_port}")
        self.load = self._locust(scn.load.model_dump(by_alias=True, mode="json"),
                                 self.folder.path / RunFolder.LOAD)
        # the timeline's clock starts with the first operation, not with Locust's boot
        self.load.wait_started(timeout=30)
        if master is not None:
            self.ui.say(f"load workers connected: {', '.join(self.load.connected_workers())}")
        self.load_t0 = time.monotonic()
        self.timeline.start(self.load_t0)
        tick = 0.25 if (self.ui.tty or any(f.when for f in scn.faults)) else 1.0
        margin = 15 + (10 if master is not None else 0)
        while not self.load.ended(within=tick):
            progress = self.load.progress()
            probe.done = progress.operations
            faults = self.timeline.active
            late = time.monotonic() - self.load_t0 >= scn.load.duration
            self._progress_line("fault" if faults else ("stopping" if late else "load"),
                                progress)
            # a master also collects its workers' last lines (bounded) before it ends
            if time.monotonic() > self.load_t0 + scn.load.duration + margin:
                self.load.stop()
        self.load.wait(timeout=10)
        lost = self.load.unfinished_workers() if master is not None else []
        if lost:  # their open operations count as unknown (info), as for a killed client
            self.ui.say(f"no last history lines from load worker(s) {', '.join(lost)}")
        if self.timeline.errors:
            self.record.harness_error = ("a fault could not be injected or healed: "
                                         + "; ".join(self.timeline.errors))

    def _alert_rules(self) -> Path | None:
        if self.scn.alert_rules:
            rules = Path(self.scn.alert_rules)
            return rules if rules.is_absolute() or rules.exists() else self.path.parent / rules
        rules_path: Path | None = self.profile.alert_rules
        return rules_path

    def _check_can_inject(self, nemeses: dict[str, Any]) -> None:
        kinds = {"process" if f.kind in ("kill", "pause", "restart") else f.kind
                 for f in self.scn.faults}
        if "toxic" in kinds and "toxic" not in nemeses:
            raise StackError("this stack has no fault proxy: toxic faults cannot be injected")
        missing = {f.kind for f in self.scn.faults if f.kind in ("kill", "pause", "restart")}
        missing -= set(self.launcher.controls)
        if missing:
            raise StackError(f"the {self.target} target cannot {', '.join(sorted(missing))} "
                             "services")

    def _progress_line(self, phase: str, p: Any = None) -> None:
        total = float(self.scn.load.duration)
        elapsed = time.monotonic() - self.load_t0 if self.load_t0 is not None else 0.0
        self.ui.line(phase, elapsed, total, p.rate if p else 0.0, p.operations if p else 0,
                     p.errors if p else 0,
                     self.timeline.active if self.timeline is not None else [],
                     self.scraper.firing() if self.scraper is not None else [])

    def heal(self) -> None:
        if self.timeline is not None:
            self.timeline.stop(timeout=10)
            undone = self.timeline.heal_all()
            if undone:
                self.ui.say(f"healed: {', '.join(undone[:6])}"
                            + (" ..." if len(undone) > 6 else ""))

    def finish(self) -> Any:
        """Merge the history, settle, snapshot, judge, write the reports."""
        from faultline.report import write_report

        assert self.folder is not None
        folder = self.folder
        load_dir = folder.path / RunFolder.LOAD
        if load_dir.exists():
            with self.phase("merge"):
                merge_histories([*sorted(load_dir.glob("history-*.jsonl")),
                                 self.nemesis_log.lines], out=folder.history)
        if self.info is not None and self.load_t0 is not None and not self.record.interrupted:
            began = time.monotonic()
            with self.phase("settle"):
                left = self.settle(float(self.scn.settle))
            self.record.settle_seconds = round(time.monotonic() - began, 2)
            self.record.settled = left
            if left:
                self.ui.say(f"not settled after {self.record.settle_seconds:g}s: "
                            f"{'; '.join(left)}")
            else:
                self.ui.say(f"settled in {self.record.settle_seconds:g}s")
            with self.phase("snapshot"):
                self.snapshot_to(folder.final_state)
        self._keep_proxy_events()
        if self.scraper is not None:
            self.scraper.stop()
            folder.file(RunFolder.ALERTS).write_text(
                _dumps([e.to_dict() for e in self.scraper.evaluator.events]
                       if self.scraper.evaluator is not None else None))
            folder.file(RunFolder.BREAKERS).write_text(_dumps(self.scraper.breaker_events))
        self.record.save(folder)
        with self.phase("judge"):
            judged = judge(folder, self.scn)
        with self.phase("report"):
            write_report(folder.path, judged.verdict, judged.run, scenario=self.scn,
                         alerts=judged.alerts, breaker_events=judged.breakers,
                         replay_command=self.record.replay, junit_path=self.opts.junit)
        self.record.save(folder)
        return judged.verdict

    def replay_command(self) -> str:
        parts = ["faultline", "run", str(self.path), "--seed", str(self.scn.seed)]
        if self.opts.duration is not None:
            parts += ["--duration", str(self.opts.duration)]
        if self.opts.bugs:
            parts += ["--bugs", ",".join(self.opts.bugs)]
        if self.opts.target:
            parts += ["--target", self.opts.target]
        if self.opts.workers > 1:
            parts += ["--workers", str(self.opts.workers)]
        master = self.opts.master
        if master is not None:
            default = LocustMaster()
            parts += ["--master", "--expect-workers", str(master.expect_workers)]
            if master.bind_host != default.bind_host:
                parts += ["--master-bind-host", master.bind_host]
            if master.bind_port != default.bind_port:
                parts += ["--master-bind-port", str(master.bind_port)]
        return shlex.join(parts)

    def stop_everything(self, healthy: bool) -> None:
        steps: list[Callable[[], object]] = [
            lambda: self.load.stop() if self.load is not None else None,
            self.heal,
            lambda: self.scraper.stop() if self.scraper is not None else None,
            lambda: self.pool.release(healthy=healthy, log=self.ui.say),
        ]
        for step in steps:
            try:
                step()
            except Exception as exc:  # cleanup goes on; say what failed
                self.ui.say(f"cleanup: {type(exc).__name__}: {exc}")
        self.registry.unregister()

    # ------------------------------------------------------------ the flow
    def run(self) -> DrillOutcome:
        from faultline.report import format_summary

        verdict = None
        try:
            with _sigterm_unwinds():
                try:
                    with self.phase("prepare"):
                        self.prepare()
                    with self.phase("stack"):
                        self.start_stack()
                    with self.phase("steady"):
                        steady = self.steady_state()
                    self.ui.say(f"steady state: {self.record.steady_message}")
                    if steady:
                        assert self.folder is not None
                        with self.phase("baseline"):
                            self.snapshot_to(self.folder.baseline_state)
                        with self.phase("load"):
                            self.drive()
                        self._progress_line("done")
                        self.ui.end_line()
                except (KeyboardInterrupt, DrillInterrupted):
                    self.record.interrupted = True
                except (StackError, LoadError) as exc:
                    self.record.harness_error = str(exc)
                except Exception as exc:
                    self.record.harness_error = f"{type(exc).__name__}: {exc}"
                    if self.folder is not None:
                        self.folder.file(RunFolder.HARNESS_ERROR).write_text(traceback.format_exc())
                finally:
                    with self.phase("heal"):
                        if self.load is not None:
                            self.load.stop()
                        self.heal()
                try:
                    if self.folder is not None:
                        with self.phase("finish"):
                            verdict = self.finish()
                except (KeyboardInterrupt, DrillInterrupted):
                    self.record.interrupted = True
                except Exception as exc:
                    assert self.folder is not None
                    self.folder.file(RunFolder.HARNESS_ERROR).write_text(traceback.format_exc())
                    self.ui.say(f"could not finish the verdict: {type(exc).__name__}: {exc}")
        finally:
            code = verdict.exit_code if verdict is not None else None
            self.stop_everything(healthy=code in (0, 1, 2, 5))
        run_dir = self.folder.path if self.folder is not None else None
        if verdict is None:
            return DrillOutcome(EXIT_INTERRUPTED if self.record.interrupted else 4, run_dir)
        summary = format_summary(verdict)
        print(summary, file=self.out)
        print(f"run directory: {run_dir}", file=self.out)
        print(f"replay: {self.record.replay}", file=self.out)
        self.out.flush()
        return DrillOutcome(int(verdict.exit_code), run_dir, verdict, summary)


def _dumps(value: Any) -> str:
    import json

    return json.dumps(value, default=str)


def _tag(folder: RunFolder) -> str:
    """A short tag unique to this run (idempotency keys carry it)."""
    import hashlib

    return hashlib.sha1(str(folder.path).encode()).hexdigest()[:8]


def run_drill(path: str | os.PathLike[str], opts: DrillOptions | None = None,
              pool: StackPool | None = None) -> DrillOutcome:
    """Run one scenario file; never raises for a bad scenario or a failing stack (the
    outcome's exit code says it), only returns. ``pool`` lends a stack shared with
    other drills (by default the drill starts its own and stops it at the end)."""
    from faultline.scenario import ScenarioError, load_scenario
    from faultline.system import ProfileError, SystemProfile, load_profile

    opts = opts or DrillOptions()
    err = opts.err or sys.stderr
    try:
        given = opts.profile if isinstance(opts.profile, SystemProfile) else (
            load_profile(opts.profile) if opts.profile else None)
        scn = load_scenario(path, profile=given)
        if opts.seed is not None or opts.duration is not None:
            scn = scn.with_overrides(seed=opts.seed, duration=opts.duration)
            scn = load_scenario_again(scn, given)
        if isinstance(opts.profile, SystemProfile):
            profile = opts.profile
        else:
            profile = load_profile(opts.profile or scn.system, near=Path(path).parent)
    except ScenarioError as exc:
        print(f"faultline: invalid scenario\n{exc}", file=err)
        return DrillOutcome(4, None)
    except (ProfileError, ValueError, OSError) as exc:
        print(f"faultline: {path}: {exc}", file=err)
        return DrillOutcome(4, None)
    unknown = sorted(set(opts.bugs) - set(profile.bugs))
    if unknown:
        print(f"faultline: unknown bug(s) {', '.join(unknown)} of system {profile.name}; "
              f"known: {', '.join(sorted(profile.bugs)) or 'none'}", file=err)
        return DrillOutcome(4, None)
    target = opts.target or scn.stack
    if target not in profile.targets:
        print(f"faultline: system {profile.name} cannot run on {target!r}; it supports: "
              f"{', '.join(profile.targets)}", file=err)
        return DrillOutcome(4, None)
    own = pool is None
    pool = pool or StackPool(reuse=False)
    try:
        return _Drill(Path(path), scn, profile, opts, pool).run()
    finally:
        if own:
            pool.close()


def load_scenario_again(scn: Any, profile: Any = None) -> Any:
    """Re-run the system checks on a scenario changed by ``--seed``/``--duration``."""
    from faultline.scenario import ScenarioError
    from faultline.scenario._system import check_against_profile

    checked, problems = check_against_profile(scn, profile)
    if problems:
        raise ScenarioError("<overrides>", problems)
    return checked
