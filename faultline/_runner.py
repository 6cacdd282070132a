"""The drill: one scenario from stack start to verdict (docs/drill-engine.md).

load scenario -> sweep leftovers of killed runs -> start the stack -> steady state
(health, a short probe load, the ledger invariants hold) -> load + fault timeline +
metrics scraper -> heal -> settle (outbox drained, projections converged) -> final
snapshot -> invariants, SLOs, alerts -> reports -> exit code.

Every exit path heals every fault, stops the load and the stack; SIGTERM is turned
into the same clean exit as Ctrl-C. ``RUN_DIR = runs/<UTC timestamp>-<name>/``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as _dt
import json
import os
import shlex
import shutil
import signal
import sys
import time
import traceback
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from faultline._drill_metrics import MetricsScraper
from faultline._drill_stack import (
    DrillStack,
    StackError,
    open_stack,
    register_run,
    sweep_leftovers,
    unregister_run,
)
from faultline.faults import FaultTimeline, NemesisLog, NetworkNemesis, ProcessNemesis
from faultline.load import LoadError, LocustMaster, LocustRun, merge_histories, write_jsonl

__all__ = ["DrillOptions", "DrillOutcome", "converged", "run_drill"]

#: the probe load of the steady-state phase
PROBE = {"profile": "steady", "users": 2, "duration": 3.0,
         "mix": {"transfer": 70, "balance": 20, "statement": 10}}
#: seconds without any change in what keeps the stack from converging: stop settling
STALL = 10.0
#: the invariants the steady state must keep (the delivery ones need settling first)
STEADY_INVARIANTS = ["conservation", "balanced_entries", "non_negative",
                     "acknowledged_exactly_once"]
StackFactory = Callable[[str, Path, list[str]], DrillStack]


class DrillInterrupted(BaseException):
    """SIGTERM arrived: unwind like Ctrl-C (every ``finally`` runs)."""


@dataclass
class DrillOptions:
    """What the CLI (or the pytest plugin) asks of one drill."""

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
    progress: bool = True
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


def converged(state: dict[str, Any]) -> list[str]:
    """Why the stack has not settled yet ([] = outbox published, every event applied,
    projections equal to balances)."""
    problems = []
    outbox = state.get("outbox", [])
    unpublished = sum(1 for o in outbox if o.get("published_at") is None)
    if unpublished:
        problems.append(f"{unpublished} outbox row(s) unpublished")
    events = {o["event_id"] for o in outbox}
    dead = {d.get("event_id") for d in state.get("dead_letters", [])}
    processed = {p["event_id"] for p in state.get("processed_events", [])}
    if events - processed - dead:
        problems.append(f"{len(events - processed - dead)} event(s) not applied")
    projected = {p["account_id"]: p["balance"] for p in state.get("projections", [])}
    drift = sum(abs(projected.get(a["id"], 0) - a["balance"]) for a in state.get("accounts", []))
    if drift:
        problems.append(f"projections differ from the ledger by {drift} in total")
    return problems


def _snapshot(stack: DrillStack) -> dict[str, Any]:
    from payments.snapshot import take_snapshot

    return dict(asyncio.run(take_snapshot(stack.database_url, stack.redis_url)))


def _get(url: str, timeout: float = 2.0) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return int(resp.status)
    except Exception:
        return 0


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


class _Drill:
    """One run; the phases are methods so that ``run`` reads as the flow above."""

    def __init__(self, path: Path, scn: Any, opts: DrillOptions, factory: StackFactory) -> None:
        self.path = path
        self.scn = scn
        self.opts = opts
        self.factory = factory
        self.err = opts.err or sys.stderr
        self.out = opts.out or sys.stdout
        stamp = _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%S")
        # absolute: every child process (Locust, the services) runs in another directory
        runs_dir = opts.runs_dir.resolve()
        self.run_dir = runs_dir / f"{stamp}-{scn.name}"
        n = 1
        while self.run_dir.exists():
            n += 1
            self.run_dir = runs_dir / f"{stamp}-{scn.name}-{n}"
        self.registry = runs_dir / ".active"
        self.target = opts.target or scn.stack
        self.stack: DrillStack | None = None
        self.load: LocustRun | None = None
        self.timeline: FaultTimeline | None = None
        self.scraper: MetricsScraper | None = None
        self.nemesis_log = NemesisLog()
        self.phase = "setup"
        self.started = time.monotonic()
        self.load_t0: float | None = None
        self._last_line = 0.0
        self.tty = hasattr(self.err, "isatty") and self.err.isatty()

    # ------------------------------------------------------------ output
    def say(self, msg: str) -> None:
        if self.tty:
            self.err.write("\r\033[K")
        self.err.write(f"faultline: {msg}\n")
        self.err.flush()

    def progress(self, force: bool = False) -> None:
        if not self.opts.progress:
            return
        now = time.monotonic()
        if not self.tty and not force and now - self._last_line < 5.0:
            return
        self._last_line = now
        total = self.scn.load.duration
        elapsed = now - self.load_t0 if self.load_t0 is not None else 0.0
        p = self.load.progress() if self.load is not None else None
        faults = self.timeline.active if self.timeline is not None else []
        firing = self.scraper.firing() if self.scraper is not None else []
        text = (f"[{self.scn.name}] {self.phase:<8} {min(elapsed, total):5.0f}/{total:.0f}s"
                f"  {p.rate if p else 0:6.1f} req/s  ops {p.operations if p else 0}"
                f"  errors {p.errors if p else 0}"
                f"  faults: {', '.join(faults) or '-'}"
                + (f"  alerts: {', '.join(firing)}" if firing else ""))
        if self.tty:
            self.err.write("\r\033[K" + text[:200])
        else:
            self.err.write(text + "\n")
        self.err.flush()

    # ------------------------------------------------------------ phases
    def prepare(self) -> None:
        self.run_dir.mkdir(parents=True)
        shutil.copyfile(self.path, self.run_dir / "scenario.yaml")
        (self.run_dir / "seed").write_text(f"{self.scn.seed}\n")
        self.nemesis_log.path = self.run_dir / "nemesis.jsonl"
        for line in sweep_leftovers(self.registry):
            self.say(f"swept a killed run: {line}")
        register_run(self.registry, run_dir=str(self.run_dir), process_groups=[], pids=[])

    def start_stack(self) -> DrillStack:
        self.phase = "stack"
        self.say(f"stack: {self.target}"
                 + (f" with bugs {','.join(self.opts.bugs)}" if self.opts.bugs else ""))
        began = time.monotonic()
        stack = self.factory(self.target, self.run_dir, list(self.opts.bugs))
        self.stack = stack
        self.say(f"stack ready in {time.monotonic() - began:.1f}s: api {stack.api_url}")
        register_run(self.registry, proxy_url=stack.proxy_url, pids=stack.pids)
        (self.run_dir / "stack.json").write_text(json.dumps(stack.seed, indent=2))
        return stack

    def _locust(self, load: dict[str, Any], history_dir: Path, seed: int,
                probe: bool = False) -> LocustRun:
        assert self.stack is not None
        # the probe proves the stack serves plain traffic; the concurrent patterns that
        # hunt for races belong to the drill itself
        run = LocustRun(host=self.stack.api_url, load=load,
                        stack_file=self.run_dir / "stack.json", history_dir=history_dir,
                        seed=seed, workers=1 if probe else self.opts.workers,
                        master=None if probe else self.opts.master,
                        client_timeout=self.opts.client_timeout,
                        extra_env={"FAULTLINE_RACES": "0"} if probe else {},
                        log_file=self.run_dir / f"{history_dir.name}-locust.log")
        run.start()
        register_run(self.registry, process_groups=[run.pid])
        return run

    def steady_state(self) -> tuple[bool, str]:
        """Health, a probe load, and the ledger invariants on what it did."""
        from faultline.checks import CheckContext, run_checks

        assert self.stack is not None
        self.phase = "steady"
        for path in ("/healthz", "/readyz"):
            deadline = time.monotonic() + 20
            while _get(self.stack.api_url + path) != 200:
                if time.monotonic() > deadline:
                    return False, f"api {path} did not answer 200"
                time.sleep(0.3)
        before = _snapshot(self.stack)
        probe_dir = self.run_dir / "probe"
        run = self._locust(dict(PROBE), probe_dir, self.scn.seed, probe=True)
        self.load = run
        run.wait()
        self.load = None
        history = merge_histories(run.history_files())
        write_jsonl(probe_dir / "history.jsonl", history)
        state = self._settle(10.0)
        done = [h for h in history if h["type"] != "invoke"]
        errors = [h for h in done if h["type"] == "info"
                  or (h["type"] == "fail" and (h.get("status") or 500) >= 500)]
        if not done:
            return False, "the probe load completed no operation"
        if len(errors) > max(1, len(done) // 20):
            return False, f"the probe load saw {len(errors)} errors in {len(done)} operations"
        results = run_checks(STEADY_INVARIANTS, history, state, CheckContext(baseline=before))
        bad = [r.name for r in results if r.valid is not True]
        if bad:
            return False, f"invariants did not hold before any fault: {', '.join(bad)}"
        return True, f"{len(done)} probe operations, invariants hold"

    def _settle(self, timeout: float) -> dict[str, Any]:
        assert self.stack is not None
        deadline = time.monotonic() + timeout
        state = _snapshot(self.stack)
        problems = converged(state)
        changed = time.monotonic()
        while problems and time.monotonic() < deadline:
            # a stack that made no progress for STALL seconds will not converge by waiting
            if time.monotonic() - changed > STALL:
                break
            time.sleep(0.5)
            self.progress()
            state = _snapshot(self.stack)
            now = converged(state)
            if now != problems:
                problems, changed = now, time.monotonic()
        return state

    def drive(self) -> None:
        """Load, the fault timeline and the metrics scraper, until the load ends."""
        from faultline.alerts import DEFAULT_RULES_PATH, AlertEvaluator, load_rules

        assert self.stack is not None
        rules_path = Path(self.scn.alert_rules) if self.scn.alert_rules else DEFAULT_RULES_PATH
        if not rules_path.is_absolute() and not rules_path.exists():
            rules_path = self.path.parent / rules_path
        self.scraper = MetricsScraper(self.stack.metrics_urls, self.run_dir / "metrics.jsonl",
                                      AlertEvaluator(load_rules(rules_path))).start()
        network = None
        if self.stack.proxy_url:
            from faultline.proxy.client import ProxyClient

            network = NetworkNemesis(ProxyClient(self.stack.proxy_url), self.nemesis_log)
        process = (ProcessNemesis(self.stack.services, self.nemesis_log)
                   if self.stack.services is not None else None)
        needs = {f.kind for f in self.scn.faults}
        if "toxic" in needs and network is None:
            raise StackError("this stack has no fault proxy: toxic faults cannot be injected")
        if needs - {"toxic"} and process is None:
            raise StackError(f"the {self.target} target cannot kill, pause or restart services")
        self.timeline = FaultTimeline(self.scn.faults, network=network, process=process,
                                      log=self.nemesis_log)
        self.phase = "load"
        load = self.scn.load.model_dump(by_alias=True, mode="json")
        master = self.opts.master
        if master is not None:
            if not master.loopback:
                self.say(f"the Locust master listens on {master.bind_host}:{master.bind_port}:"
                         " unauthenticated, unencrypted; anyone who reaches it can join the drill")
            self.say(f"waiting up to {master.workers_timeout:g}s for {master.expect_workers} "
                     f"load worker(s): faultline load-worker --master-host HOST "
                     f"--master-port {master.bind_port}")
        self.load = self._locust(load, self.run_dir / "load", self.scn.seed)
        # the timeline's clock starts with the first operation, not with Locust's boot
        self.load.wait_started(timeout=30)
        if master is not None:
            self.say(f"load workers connected: {', '.join(self.load.connected_workers())}")
        self.load_t0 = time.monotonic()
        self.timeline.start(self.load_t0)
        while self.load.running():
            time.sleep(1.0 if not self.tty else 0.5)
            faults = self.timeline.active
            self.phase = "fault" if faults else ("load" if time.monotonic() - self.load_t0 <
                                                 self.scn.load.duration else "stopping")
            self.progress()
            # a master also collects its workers' last lines (bounded) before it ends
            margin = 15 + (10 if master is not None else 0)
            if time.monotonic() > self.load_t0 + self.scn.load.duration + margin:
                self.load.stop()
        self.load.wait(timeout=10)
        lost = self.load.unfinished_workers() if master is not None else []
        if lost:  # their open operations count as unknown (info), as for a killed client
            self.say(f"no last history lines from load worker(s) {', '.join(lost)}")

    def heal(self) -> None:
        if self.timeline is not None:
            self.timeline.stop(timeout=10)
            undone = self.timeline.heal_all()
            if undone:
                self.say(f"healed: {', '.join(undone[:6])}" + (" ..." if len(undone) > 6 else ""))

    def finish(self, steady_ok: bool, steady_msg: str, harness_error: str | None) -> Any:
        """Settle, snapshot, check, report; returns the verdict."""
        from faultline.checks import CheckContext, check_slos, run_checks, verdict
        from faultline.report import write_report

        history: list[dict[str, Any]] = []
        state: dict[str, Any] | None = None
        results: list[Any] = []
        scraper_alerts: list[Mapping[str, Any]] | None = None
        if self.load is not None or (self.run_dir / "load").exists():
            files = sorted((self.run_dir / "load").glob("history-*.jsonl"))
            history = merge_histories([*files, self.nemesis_log.lines])
            write_jsonl(self.run_dir / "history.jsonl", history)
        if steady_ok and self.stack is not None and self.load_t0 is not None and not self.interrupted:
            self.phase = "settle"
            state = self._settle(self.scn.settle)
            left = converged(state)
            if left:
                self.say(f"not settled after {self.scn.settle:g}s: {'; '.join(left)}")
            (self.run_dir / "final_state.json").write_text(json.dumps(state, default=str))
        if self.scraper is not None:
            self.scraper.stop()
            scraper_alerts = [e.to_dict() for e in self.scraper.evaluator.events]
            (self.run_dir / "alerts.json").write_text(json.dumps(scraper_alerts, default=str))
            (self.run_dir / "breakers.json").write_text(
                json.dumps(self.scraper.breaker_events, default=str))
        ctx = CheckContext(scenario=self.scn, baseline=self.baseline, alerts=scraper_alerts)
        if state is not None:
            self.phase = "check"
            results = run_checks(self.scn.invariants, history, state, ctx)
            results += check_slos(self.scn, history, ctx)
        v = verdict(results, steady_state_ok=steady_ok,
                    harness_error=harness_error,
                    expected=self.scn.invariants, scenario=self.scn.name, seed=self.scn.seed,
                    info={"run_dir": str(self.run_dir), "target": self.target,
                          "bugs": self.opts.bugs, "steady_state": steady_msg,
                          "replay": self.replay_command()})
        write_report(self.run_dir, v, history, scenario=self.scn, alerts=scraper_alerts,
                     breaker_events=self.scraper.breaker_events if self.scraper else (),
                     context=ctx, replay_command=self.replay_command(),
                     junit_path=self.opts.junit)
        return v

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

    def stop_everything(self) -> None:
        steps: list[Callable[[], object]] = [
            lambda: self.load.stop() if self.load is not None else None,
            self.heal,
            lambda: self.scraper.stop() if self.scraper is not None else None,
            lambda: self.stack.stop() if self.stack is not None else None,
        ]
        for step in steps:
            try:
                step()
            except Exception as exc:  # cleanup goes on; say what failed
                self.say(f"cleanup: {type(exc).__name__}: {exc}")
        self.stack = None
        unregister_run(self.registry)

    # ------------------------------------------------------------ the flow
    def run(self) -> DrillOutcome:
        from faultline.report import format_summary

        self.baseline: dict[str, Any] | None = None
        self.interrupted = False
        steady_ok, steady_msg, harness_error = True, "", None
        interrupted: BaseException | None = None
        v = None
        try:
            with _sigterm_unwinds():
                try:
                    self.prepare()
                    self.start_stack()
                    steady_ok, steady_msg = self.steady_state()
                    self.say(f"steady state: {steady_msg}")
                    if steady_ok:
                        assert self.stack is not None
                        self.baseline = _snapshot(self.stack)
                        (self.run_dir / "baseline_state.json").write_text(
                            json.dumps(self.baseline, default=str))
                        self.drive()
                        if self.timeline is not None and self.timeline.errors:
                            harness_error = ("a fault could not be injected or healed: "
                                             + "; ".join(self.timeline.errors))
                        self.progress(force=True)
                        if self.tty:
                            self.err.write("\n")
                except (KeyboardInterrupt, DrillInterrupted) as exc:
                    interrupted = exc
                    self.interrupted = True
                    harness_error = "interrupted (Ctrl-C or SIGTERM) before the verdict"
                except (StackError, LoadError) as exc:
                    harness_error = str(exc)
                except Exception as exc:
                    harness_error = f"{type(exc).__name__}: {exc}"
                    (self.run_dir / "harness-error.txt").write_text(traceback.format_exc())
                finally:
                    if self.load is not None:
                        self.load.stop()
                    self.heal()
                try:
                    if self.run_dir.exists():
                        v = self.finish(steady_ok, steady_msg, harness_error)
                except (KeyboardInterrupt, DrillInterrupted) as exc:
                    interrupted = exc
                except Exception as exc:
                    (self.run_dir / "harness-error.txt").write_text(traceback.format_exc())
                    self.say(f"could not finish the verdict: {type(exc).__name__}: {exc}")
        finally:
            self.stop_everything()
        if v is None:
            return DrillOutcome(4 if interrupted is None else 130, self.run_dir)
        summary = format_summary(v)
        print(summary, file=self.out)
        print(f"run directory: {self.run_dir}", file=self.out)
        print(f"replay: {self.replay_command()}", file=self.out)
        self.out.flush()
        if interrupted is not None:
            return DrillOutcome(130, self.run_dir, v, summary)
        return DrillOutcome(int(v.exit_code), self.run_dir, v, summary)


def run_drill(path: str | os.PathLike[str], opts: DrillOptions | None = None,
              stack_factory: StackFactory | None = None) -> DrillOutcome:
    """Run one scenario file; never raises for a bad scenario or a failing stack (the
    outcome's exit code says it), only returns."""
    from faultline.scenario import ScenarioError, load_scenario

    opts = opts or DrillOptions()
    err = opts.err or sys.stderr
    try:
        scn = load_scenario(path)
        if opts.seed is not None or opts.duration is not None:
            scn = scn.with_overrides(seed=opts.seed, duration=opts.duration)
    except ScenarioError as exc:
        print(f"faultline: invalid scenario\n{exc}", file=err)
        return DrillOutcome(4, None)
    except (ValueError, OSError) as exc:
        print(f"faultline: {path}: {exc}", file=err)
        return DrillOutcome(4, None)
    return _Drill(Path(path), scn, opts, stack_factory or open_stack).run()


# ------------------------------------------------------------------ stored runs


def _stored_baseline(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / "baseline_state.json"
    return dict(json.loads(path.read_text())) if path.exists() else None


def _stored_alerts(run_dir: Path) -> list[Mapping[str, Any]] | None:
    path = run_dir / "alerts.json"
    return list(json.loads(path.read_text())) if path.exists() else None


def _stored_breakers(run_dir: Path) -> list[Mapping[str, Any]]:
    path = run_dir / "breakers.json"
    return list(json.loads(path.read_text())) if path.exists() else []
