"""What an exploration leaves behind: ``report.md`` for people, ``explore.json`` for
tools, ``junit.xml`` for CI.

The report answers, in order: did it find something; which checker caught it and what
the violation looked like; the original drill and the minimal one side by side; how the
shrinker got there (every candidate, every try with its seed); the command that replays
the minimal drill; and every drill explored.
"""

from __future__ import annotations

import datetime as _dt
import html
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from ._draw import Drill, describe_load
from ._explore import DrillRun, ExploreOptions, ExploreResult, Finding
from ._render import describe_fault
from ._space import FaultSpace

__all__ = ["explore_json", "report_markdown", "write_junit", "write_reports"]

_STATUS = {0: "held", 1: "invariant violated", 2: "SLO missed", 3: "steady state failed",
           4: "harness error", 5: "vacuous", 130: "interrupted"}


def _size(data: dict[str, Any]) -> dict[str, Any]:
    load = data["load"]
    return {"faults": len(data.get("faults") or []), "load_seconds": load["duration"],
            "users": load["users"], "profile": load.get("profile", "steady")}


def _drill_json(run: DrillRun) -> dict[str, Any]:
    return {"index": run.index, "name": run.name, "file": run.file, "seed": run.seed,
            "items": list(run.items), "exit_code": run.exit_code, "reason": run.reason,
            "failed": run.failure.checkers if run.failure else [],
            "run_dir": run.run_dir, "seconds": run.seconds}


def _finding_json(f: Finding) -> dict[str, Any]:
    target = f.drill.failure
    assert target is not None
    return {
        "drill": f.drill.index, "failure": target.to_json(),
        "original": f.original, "original_size": _size(f.original),
        "minimal": f.minimal, "minimal_size": _size(f.minimal),
        "minimal_file": str(f.minimal_file), "seed": f.shrink.seed, "replay": f.replay,
        "reproduced": f.reproduced,
        "confirmed": {"failed": f.shrink.confirmed[0], "replays": f.shrink.confirmed[1],
                      "reliable": f.shrink.reliable, "walked_back": f.shrink.walked_back},
        "shrink": {"runs": f.shrink.runs, "stopped": f.shrink.stopped, "steps": [
            {"number": s.number, "stage": s.stage, "what": s.what, "accepted": s.accepted,
             "faults": s.faults, "load_seconds": s.load_seconds, "users": s.users,
             "trials": [t.to_json(target) for t in s.trials]} for s in f.shrink.steps]},
    }


def explore_json(result: ExploreResult, opts: ExploreOptions, space: FaultSpace,
                 command: str) -> dict[str, Any]:
    """Everything about the exploration as plain data."""
    return {
        "command": command, "system": space.profile.name, "seed": result.seed,
        "target": opts.target, "bugs": opts.bugs, "budget": opts.budget,
        "time_limit": opts.time_limit, "tries": opts.tries, "shrink_runs": opts.shrink_runs,
        "exit_code": result.exit_code, "status": _STATUS.get(result.exit_code, "?"),
        "stopped": result.stopped, "interrupted": result.interrupted,
        "seconds": result.seconds, "drills_explored": len(result.drills),
        "drill_runs": len(result.drills) + (result.finding.shrink.runs
                                            if result.finding else 0),
        "written_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "drills": [_drill_json(d) for d in result.drills],
        "finding": _finding_json(result.finding) if result.finding else None,
        "space": space.describe(),
    }


def _minutes(seconds: float) -> str:
    s = round(seconds)
    return f"{s // 60}m{s % 60:02d}s"


def _load_words(data: dict[str, Any]) -> str:
    return describe_load(data["load"])


def _finding_md(f: Finding, folder: Path) -> list[str]:
    target = f.drill.failure
    assert target is not None
    orig, mini = _size(f.original), _size(f.minimal)
    rel = Path(f.drill.file).relative_to(folder) if f.drill.file.startswith(str(folder)) else \
        Path(f.drill.file)
    out = [f"## Found: `{target.checker}` ({', '.join(sorted(target.kinds)) or 'no kinds'})", "",
           f"Drill {f.drill.index} (`{rel}`, seed {f.drill.seed}) ended **{f.drill.exit_code}**: "
           f"{f.drill.reason}.", ""]
    if target.example is not None:
        out += ["First error record of the checker:", "", "```json",
                json.dumps(target.example, default=str)[:1500], "```", ""]
    if not f.reproduced:
        out += ["**Not reproduced on a fresh stack**: the drill as drawn did not fail again "
                f"in {f.shrink.runs} run(s) on a stack of its own. The violation was real on "
                "the shared stack, but it needed what earlier drills left behind; "
                "`minimal.yaml` is the drill as drawn, not shrunk.", ""]
    last = next((s for s in reversed(f.shrink.steps) if s.accepted), None)
    kept = next((t for t in reversed(last.trials) if t.failure), None) if last else None
    if kept is not None and kept.failure is not None and kept.failure.steady:
        out += ["The minimal drill fails in the **steady-state probe**, before any fault: "
                "this failure needs load alone (a race), no fault.", ""]
    out += [f"Shrunk in {f.shrink.runs} drill runs ({f.shrink.stopped}) to "
            f"`{f.minimal_file.name}`: **{mini['faults']} fault(s), "
            f"{mini['load_seconds']:g} s of load**, {mini['users']} users.", ""]
    if f.reproduced:
        failed, replays = f.shrink.confirmed
        back = (f" (after setting aside {f.shrink.walked_back} smaller candidate(s) that "
                "failed in fewer)" if f.shrink.walked_back else "")
        out += [f"Confirmed: replayed with its seed it failed the same way **{failed} of "
                f"{replays}** times{back}." if f.shrink.reliable else
                f"**Flaky**: replayed with its seed it failed the same way {failed} of "
                f"{replays} times, and no larger candidate, not even the drill as drawn, "
                "failed in most of its replays: a narrow race that this drill hits now "
                "and then.", ""]
    out += ["Replay it:", "", "```sh", f.replay, "```", "",
            "| | original | minimal |", "|---|---|---|",
            f"| faults | {orig['faults']} | {mini['faults']} |",
            f"| load | {_load_words(f.original)} | {_load_words(f.minimal)} |", ""]
    for data, title in ((f.original, "original"), (f.minimal, "minimal")):
        out.append(f"- {title}: " + ("; ".join(describe_fault(x) for x in data.get("faults") or [])
                                     or "no fault"))
    out += ["", f"<table><tr><th>original (drill {f.drill.index})</th><th>minimal</th></tr><tr>"]
    for data in (f.original, f.minimal):
        out.append(f"<td><pre>{html.escape(Drill(0, data).text())}</pre></td>")
    out += ["</tr></table>", "", "### Shrink steps", "",
            "What \"the same failure\" means: the same checker false with an error of the "
            "same kind (docs/explore.md). Removing faults: kept when one of its tries "
            "fails that way; shorter/simpler: kept when it fails twice with the replay "
            "seed; confirm: the drill written out fails that way in most of its replays "
            "(else the kept candidates before it, walking back).", "",
            "| # | pass | change | kept | tries (seed: exit, same failure?) | faults | load |",
            "|---|---|---|---|---|---|---|"]
    for s in f.shrink.steps:
        tries = "; ".join(f"{t.seed}: {t.exit_code}{' ✓' if target.reproduced_by(t.failure) else ''}"
                          for t in s.trials)
        out.append(f"| {s.number} | {s.stage} | {s.what} | {'yes' if s.accepted else 'no'} | "
                   f"{tries} | {s.faults} | {s.load_seconds:g}s, {s.users} users |")
    return [*out, ""]


def report_markdown(result: ExploreResult, opts: ExploreOptions, space: FaultSpace,
                    command: str) -> str:
    """``report.md``."""
    folder = result.folder.path if result.folder else Path(".")
    runs = len(result.drills) + (result.finding.shrink.runs if result.finding else 0)
    out = [f"# faultline explore: {space.profile.name}, seed {result.seed}", "",
           f"`{command}`", "",
           f"Exit **{result.exit_code}** ({_STATUS.get(result.exit_code, '?')}). "
           f"{len(result.drills)} drill(s) explored, {runs} drill run(s) in all, "
           f"{_minutes(result.seconds)} (stopped: {result.stopped or 'interrupted'}).", ""]
    if result.finding is not None:
        out += _finding_md(result.finding, folder)
    else:
        out += ["## Nothing found", "",
                "No explored drill violated an invariant or missed an SLO.", ""]
    out += ["## Drills explored", "", "| # | drill | drawn | exit | verdict | s |",
            "|---|---|---|---|---|---|"]
    for d in result.drills:
        out.append(f"| {d.index} | `{Path(d.file).name}` | {', '.join(d.items)} | "
                   f"{d.exit_code} | {d.reason.replace('|', '/')} | {d.seconds:g} |")
    return "\n".join(out) + "\n"


def write_junit(path: Path, result: ExploreResult, space: FaultSpace) -> Path:
    """One testcase per explored drill: a finding is a ``<failure>`` carrying the
    minimal scenario and its replay command, 3/4 an ``<error>``, vacuous ``<skipped>``."""
    system = space.profile.name
    suite = ET.Element("testsuite", name=f"faultline.explore.{system}",
                       tests=str(len(result.drills)), time=f"{result.seconds:.1f}")
    counts = {"failures": 0, "errors": 0, "skipped": 0}
    for d in result.drills:
        case = ET.SubElement(suite, "testcase", classname=f"explore.{system}",
                             name=Path(d.file).stem, time=f"{d.seconds:.1f}")
        finding = result.finding
        if d.failure is not None and finding is not None and finding.drill is d:
            counts["failures"] += 1
            node = ET.SubElement(case, "failure", message=d.failure.describe(),
                                 type="invariant" if d.exit_code == 1 else "slo")
            node.text = (f"{d.reason}\nminimal: {finding.minimal_file}\n"
                         f"replay: {finding.replay}\n\n"
                         + Drill(0, finding.minimal).text())
        elif d.exit_code in (1, 2):
            counts["failures"] += 1
            ET.SubElement(case, "failure", message=d.reason)
        elif d.exit_code == 5:
            counts["skipped"] += 1
            ET.SubElement(case, "skipped", message=d.reason)
        elif d.exit_code != 0:
            counts["errors"] += 1
            ET.SubElement(case, "error", message=d.reason)
    for key, value in counts.items():
        suite.set(key, str(value))
    root = ET.Element("testsuites", name="faultline explore")
    root.append(suite)
    ET.indent(root)
    path.write_text(ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n")
    return path


def write_reports(result: ExploreResult, opts: ExploreOptions, space: FaultSpace,
                  command: str) -> dict[str, Path]:
    """Write report.md, explore.json, junit.xml (and ``--junit``'s copy)."""
    assert result.folder is not None
    folder = result.folder
    paths = {"report": folder.file(folder.REPORT), "json": folder.file(folder.JSON),
             "junit": folder.file(folder.JUNIT)}
    paths["report"].write_text(report_markdown(result, opts, space, command))
    paths["json"].write_text(json.dumps(explore_json(result, opts, space, command), indent=2,
                                        default=str) + "\n")
    write_junit(paths["junit"], result, space)
    if opts.junit is not None:
        opts.junit.parent.mkdir(parents=True, exist_ok=True)
        opts.junit.write_text(paths["junit"].read_text())
        paths["junit_copy"] = opts.junit
    return paths
