"""report.html: one self-contained page (inline CSS and SVG, no scripts, no network)."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

from faultline.checks import (
    UNKNOWN,
    CheckContext,
    Verdict,
)

from ._svg import Line, Mark, Shade, line_chart

__all__ = ["render_html", "write_html"]

_CSS = """
body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:960px}
h1{font-size:20px;margin-bottom:4px} h2{font-size:16px;margin-top:28px;border-bottom:1px solid #ddd}
.badge{display:inline-block;padding:4px 10px;border-radius:4px;color:#fff;font-weight:bold}
.ok{background:#2e7d32}.bad{background:#c62828}.unk{background:#ef6c00}
table{border-collapse:collapse;font-size:13px;width:100%}
td,th{border:1px solid #ddd;padding:4px 6px;text-align:left;vertical-align:top}
th{background:#f5f5f5} pre{background:#f7f7f7;padding:8px;overflow-x:auto;font-size:12px}
.pass{color:#2e7d32;font-weight:bold}.fail{color:#c62828;font-weight:bold}
.unknown{color:#ef6c00;font-weight:bold} small{color:#666}
"""


def _cell(valid: Any) -> str:
    if valid is True:
        return '<td class="pass">pass</td>'
    if valid is False:
        return '<td class="fail">FAIL</td>'
    return '<td class="unknown">unknown</td>'


def _num(v: Any, digits: int = 4) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}g}"
    return escape(str(v))


def _results_table(verdict: Verdict) -> str:
    rows = ["<tr><th>check</th><th>kind</th><th>result</th><th>details</th></tr>"]
    for r in verdict.results:
        detail = [escape(r.message)]
        for err in r.errors:
            first = escape(json.dumps(err.get("first"), default=str)[:300])
            detail.append(f"<br><b>{escape(err['type'])}</b> x{err['count']} — first: <code>{first}</code>")
        ev = r.evidence or {}
        if r.valid is False and ev.get("history"):
            detail.append(f"<br><small>history lines {escape(str(ev['history'][:20]))}</small>")
        if r.valid is False:
            for table, ids in (ev.get("rows") or {}).items():
                detail.append(f"<br><small>{escape(table)}: {escape(str(ids[:10]))}</small>")
        rows.append(
            f"<tr><td>{escape(r.name)}</td><td>{escape(r.kind)}</td>{_cell(r.valid)}"
            f"<td>{''.join(detail)}</td></tr>"
        )
    return "<table>" + "".join(rows) + "</table>"


def _phase_table(stats: Mapping[str, Mapping[str, Any]]) -> str:
    rows = [
        "<tr><th>phase</th><th>duration s</th><th>operations</th><th>ok</th><th>errors</th>"
        "<th>error rate</th><th>ok/s</th><th>p50 ms</th><th>p99 ms</th><th>max ms</th></tr>"
    ]
    for phase, s in stats.items():
        lat = s.get("latency", {})
        rows.append(
            f"<tr><td>{escape(phase)}</td><td>{_num(s['duration_s'])}</td><td>{s['operations']}</td>"
            f"<td>{s['ok']}</td><td>{s['errors']}</td><td>{_num(s['error_rate'])}</td>"
            f"<td>{_num(s['throughput'])}</td><td>{_num(lat.get('p50_ms'))}</td>"
            f"<td>{_num(lat.get('p99_ms'))}</td><td>{_num(lat.get('max_ms'))}</td></tr>"
        )
    return "<table>" + "".join(rows) + "</table>"


def _list_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    body = "".join(
        "<tr>" + "".join(f"<td>{_num(c)}</td>" for c in row) + "</tr>" for row in rows
    )
    if not body:
        return "<p><small>none</small></p>"
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    return f"<table><tr>{head}</tr>{body}</table>"


def _opened(run: Any, context: CheckContext | None) -> Any:
    """A :class:`StoredRun` for ``run`` (one, or a history list)."""
    from faultline.checks import StoredRun
    from faultline.checks._source import ListRecords

    if isinstance(run, StoredRun):
        return run
    return StoredRun(ListRecords(list(run), "history"), None,
                     context if context is not None else CheckContext())


def _faults_table(verdict: Verdict) -> str:
    """Each fault with its window, status, effect and the operations it met."""
    faults = getattr(verdict, "faults", None) or []

    def counters(values: Mapping[str, Any] | None) -> str:
        return ", ".join(f"{k} {v}" for k, v in (values or {}).items()) or "—"

    return _list_table(
        ["fault", "start s", "end s", "status", "effect", "exposed to", "operations met"],
        [(f.get("name"), f.get("start_s"), f.get("end_s"),
          str(f.get("status", "")).replace("_", " ") + (" (vacuous)" if f.get("vacuous") else ""),
          counters(f.get("effect")), counters(f.get("seen")), counters(f.get("operations")))
         for f in faults])


def render_html(
    verdict: Verdict,
    history: Any,
    *,
    scenario: Any = None,
    alerts: Sequence[Mapping[str, Any]] | None = None,
    breaker_events: Sequence[Mapping[str, Any]] = (),
    context: CheckContext | None = None,
    replay_command: str | None = None,
    bucket_s: float = 1.0,
) -> str:
    """The report page as a string (see :func:`write_html`)."""
    run = _opened(history, context)
    series = run.timeseries(bucket_s=bucket_s)
    origin = run.origin_ns() or 0

    def sec(ns: int | None) -> float:
        return ((ns or 0) - origin) / 1e9

    windows = run.fault_windows()
    end_s = series[-1]["t"] + bucket_s if series else 0.0
    shades = []
    for w in windows:
        start = sec(w["start_ns"] if isinstance(w, Mapping) else w.start_ns)
        end_ns = w.get("end_ns") if isinstance(w, Mapping) else w.end_ns
        name = w.get("name") if isinstance(w, Mapping) else w.name
        shades.append(Shade(start, sec(end_ns) if end_ns is not None else end_s, str(name)))
    marks = [
        Mark(sec(e.get("time_ns")), f"{e.get('name', 'breaker')}: {e.get('new')}", "#6a1b9a")
        for e in breaker_events
    ]
    alert_marks = [
        Mark(sec(e.get("time_ns")), f"{e.get('alert')} {e.get('state')}", "#00695c")
        for e in alerts or ()
    ]
    ts = [row["t"] for row in series]
    charts = [
        line_chart(
            "Throughput and errors per second",
            [
                Line("ok/s", [(t, r["throughput"]) for t, r in zip(ts, series, strict=True)]),
                Line("errors/s", [(t, r["errors"] / bucket_s) for t, r in zip(ts, series, strict=True)], "#d62728"),
                Line("refused/s", [(t, r["fails"] / bucket_s) for t, r in zip(ts, series, strict=True)], "#999999", dashed=True),
            ],
            y_label="operations/s",
            shades=shades,
            marks=marks + alert_marks,
        ),
        line_chart(
            "Latency of successful operations",
            [
                Line("p50 ms", [(t, r["p50_ms"]) for t, r in zip(ts, series, strict=True)]),
                Line("p99 ms", [(t, r["p99_ms"]) for t, r in zip(ts, series, strict=True)], "#ff7f0e"),
            ],
            y_label="ms",
            shades=shades,
            marks=marks,
        ),
    ]
    try:
        stats = run.phase_stats()
    except Exception:  # the report must render even when the history is odd
        stats = {}
    status_class = "ok" if verdict.exit_code == 0 else ("unk" if verdict.exit_code == 4 else "bad")
    title = escape(verdict.scenario or "drill")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>faultline: {title}</title><style>{_CSS}</style></head><body>",
        f"<h1>{title}</h1>",
        f'<p><span class="badge {status_class}">{escape(verdict.status.upper())} — exit '
        f"{verdict.exit_code}</span> {escape(verdict.reason)}</p>",
    ]
    description = str(getattr(scenario, "description", None) or "")
    if description:
        parts.append(f"<p>{escape(description)}</p>")
    if verdict.seed is not None:
        parts.append(f"<p><small>seed {verdict.seed}</small></p>")
    if replay_command:
        parts.append(f"<p>Replay: <code>{escape(replay_command)}</code></p>")
    parts.append("<h2>Checks</h2>" + _results_table(verdict))
    parts.append("<h2>Over time</h2>" + "".join(f"<div>{c}</div>" for c in charts))
    parts.append("<h2>Phases</h2>" + (_phase_table(stats) if stats else "<p><small>none</small></p>"))
    parts.append("<h2>Faults and what they did</h2>" + _faults_table(verdict))
    if alerts is None:
        parts.append("<h2>Alerts</h2><p><small>alert rules were not evaluated</small></p>")
    else:
        parts.append(
            "<h2>Alerts</h2>"
            + _list_table(
                ["alert", "state", "at s", "labels", "value"],
                [
                    (e.get("alert"), e.get("state"), round(sec(e.get("time_ns")), 2),
                     json.dumps(e.get("labels") or {}), e.get("value"))
                    for e in alerts
                ],
            )
        )
    parts.append(
        "<h2>Breaker state changes</h2>"
        + _list_table(
            ["breaker", "from", "to", "at s"],
            [(e.get("name"), e.get("old"), e.get("new"), round(sec(e.get("time_ns")), 2)) for e in breaker_events],
        )
    )
    if scenario is not None and hasattr(scenario, "model_dump"):
        dumped = json.dumps(scenario.model_dump(mode="json", by_alias=True), indent=2)
        parts.append(f"<h2>Scenario</h2><pre>{escape(dumped)}</pre>")
    unknown = [r.name for r in verdict.results if r.valid == UNKNOWN]
    if unknown:
        parts.append(f"<p class='unknown'>Not checked: {escape(', '.join(unknown))}</p>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_html(path: str | os.PathLike[str], verdict: Verdict, history: Any, **kwargs: Any) -> Path:
    """Write ``report.html``; keyword arguments as :func:`render_html`."""
    out = Path(path)
    out.write_text(render_html(verdict, history, **kwargs), encoding="utf-8")
    return out
