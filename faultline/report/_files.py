"""verdict.json, junit.xml and the plain-text summary."""

from __future__ import annotations

import json
import math
import os
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, TextIO

from faultline.checks import UNKNOWN, CheckResult, Verdict

__all__ = ["format_summary", "junit_xml", "print_summary", "write_junit", "write_verdict_json"]


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_jsonable(v) for v in value]
    return value


def write_verdict_json(path: str | os.PathLike[str], verdict: Verdict) -> Path:
    """Write ``verdict.json`` (strict JSON: NaN becomes null)."""
    out = Path(path)
    out.write_text(
        json.dumps(_jsonable(verdict.to_dict()), indent=2, sort_keys=False, default=str) + "\n",
        encoding="utf-8",
    )
    return out


def _failure_text(result: CheckResult) -> str:
    lines = [result.message]
    for err in result.errors:
        lines.append(f"- {err['type']} x{err['count']}")
        for which in ("first", "worst", "last"):
            lines.append(f"    {which}: {json.dumps(_jsonable(err.get(which)), default=str)}")
    ev = result.evidence or {}
    if ev.get("history"):
        lines.append(f"history lines: {ev['history']}")
    for table, ids in (ev.get("rows") or {}).items():
        lines.append(f"{table} rows: {ids}")
    return "\n".join(lines)


def junit_xml(verdict: Verdict, *, suite: str | None = None) -> str:
    """JUnit XML: one testcase per invariant and per SLO.

    ``False`` -> ``<failure>``; ``unknown`` -> ``<error>`` (not checked is not passed).
    """
    name = suite or f"faultline.{verdict.scenario or 'drill'}"
    failures = sum(1 for r in verdict.results if r.valid is False)
    errors = sum(1 for r in verdict.results if r.valid == UNKNOWN)
    root = ET.Element("testsuites", name="faultline")
    ts = ET.SubElement(
        root,
        "testsuite",
        name=name,
        tests=str(len(verdict.results)),
        failures=str(failures),
        errors=str(errors),
        skipped="0",
    )
    props = ET.SubElement(ts, "properties")
    for key, value in (
        ("exit_code", verdict.exit_code),
        ("status", verdict.status),
        ("reason", verdict.reason),
        ("seed", verdict.seed),
    ):
        ET.SubElement(props, "property", name=key, value=str(value))
    for r in verdict.results:
        case = ET.SubElement(ts, "testcase", classname=f"{name}.{r.kind}", name=r.name)
        if r.valid is False:
            types = ", ".join(e["type"] for e in r.errors) or "violated"
            node = ET.SubElement(case, "failure", message=f"{r.name}: {r.message}", type=types)
            node.text = _failure_text(r)
        elif r.valid == UNKNOWN:
            node = ET.SubElement(case, "error", message=f"{r.name} not checked: {r.message}", type="unknown")
            node.text = _failure_text(r)
        else:
            ET.SubElement(case, "system-out").text = r.message
    if verdict.exit_code == 4 and not verdict.results:
        case = ET.SubElement(ts, "testcase", classname=f"{name}.harness", name="harness")
        ET.SubElement(case, "error", message=verdict.reason, type="harness")
        ts.set("tests", "1")
        ts.set("errors", "1")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_junit(path: str | os.PathLike[str], verdict: Verdict, *, suite: str | None = None) -> Path:
    """Write ``junit.xml``."""
    out = Path(path)
    out.write_text(junit_xml(verdict, suite=suite), encoding="utf-8")
    return out


_MARK = {True: "PASS", False: "FAIL", UNKNOWN: "????"}


def format_summary(verdict: Verdict, *, color: bool = False) -> str:
    """A plain-text summary: one line per check, then the verdict and exit code."""

    def paint(text: str, code: str) -> str:
        return f"\033[{code}m{text}\033[0m" if color else text

    head = f"faultline verdict: {verdict.scenario or 'drill'}"
    if verdict.seed is not None:
        head += f" (seed {verdict.seed})"
    lines = [head]
    width = max((len(r.name) for r in verdict.results), default=10)
    for r in verdict.results:
        mark = _MARK.get(r.valid, "????")
        code = {"PASS": "32", "FAIL": "31"}.get(mark, "33")
        lines.append(f"  {paint(mark, code)}  {r.name.ljust(width)}  {r.message}")
        if r.valid is False:
            for err in r.errors[:5]:
                first = json.dumps(_jsonable(err.get("first")), default=str)
                if len(first) > 160:
                    first = first[:157] + "..."
                lines.append(f"        {err['type']} x{err['count']}: first {first}")
    for f in getattr(verdict, "faults", None) or []:
        effect = ", ".join(f"{k} {v}" for k, v in (f.get("effect") or {}).items() if v)
        ops = (f.get("operations") or {}).get("invoked", 0)
        status = str(f.get("status", "")).replace("_", " ")
        mark = paint("VOID", "33") if f.get("vacuous") else paint("HIT ", "32")
        lines.append(f"  {mark}  fault {f.get('name')}: {status}"
                     + (f"; {effect}" if effect else "") + f" ({ops} operations met it)")
    code = "32" if verdict.exit_code == 0 else "31"
    lines.append(paint(f"=> {verdict.status.upper()} (exit {verdict.exit_code}): {verdict.reason}", code))
    return "\n".join(lines)


def print_summary(verdict: Verdict, file: TextIO | None = None) -> None:
    """Print :func:`format_summary` (in color on a terminal)."""
    stream = file if file is not None else sys.stdout
    isatty = getattr(stream, "isatty", None)
    print(format_summary(verdict, color=bool(isatty and isatty())), file=stream)
