"""Reports of a drill: verdict.json, junit.xml, report.html and a text summary.

API summary::

    from faultline.report import write_report, print_summary
    paths = write_report(run_dir, verdict, history, scenario=scn, alerts=alert_dicts,
                         breaker_events=[{"time_ns", "name", "old", "new"}], context=ctx,
                         replay_command="faultline run scenarios/x.yaml --seed 7")
    print_summary(verdict)

``alerts=None`` means the rules were not evaluated (the page says so). Every writer
is also usable alone: ``write_verdict_json``, ``write_junit`` (``junit_xml``),
``write_html`` (``render_html``), ``format_summary``.
"""

from __future__ import annotations

from ._files import format_summary, junit_xml, print_summary, write_junit, write_verdict_json
from ._html import render_html, write_html
from ._svg import Line, Mark, Shade, line_chart
from ._write import write_report

__all__ = [
    "Line",
    "Mark",
    "Shade",
    "format_summary",
    "junit_xml",
    "line_chart",
    "print_summary",
    "render_html",
    "write_html",
    "write_junit",
    "write_report",
    "write_verdict_json",
]
