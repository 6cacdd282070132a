"""Write every report file of one run."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from faultline.checks import CheckContext, Verdict

from ._files import write_junit, write_verdict_json
from ._html import write_html

__all__ = ["write_report"]


def write_report(
    run_dir: str | os.PathLike[str],
    verdict: Verdict,
    run: Any,
    *,
    scenario: Any = None,
    alerts: Sequence[Mapping[str, Any]] | None = None,
    breaker_events: Sequence[Mapping[str, Any]] = (),
    context: CheckContext | None = None,
    replay_command: str | None = None,
    junit_path: str | os.PathLike[str] | None = None,
) -> dict[str, Path]:
    """Write ``verdict.json``, ``junit.xml`` and ``report.html`` into ``run_dir``.

    ``run`` is the opened run (:class:`faultline.checks.StoredRun`: the plots come from
    its columns, so a run of millions of operations is reported without holding it), or
    a history as a list of dicts. ``junit_path`` writes the JUnit file elsewhere too
    (``--junit PATH``). Returns
    ``{"verdict": path, "junit": path, "html": path}``. The HTML is written last and a
    failure there never loses the verdict or JUnit file.
    """
    out = Path(run_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "verdict": write_verdict_json(out / "verdict.json", verdict),
        "junit": write_junit(out / "junit.xml", verdict),
    }
    if junit_path is not None:
        write_junit(junit_path, verdict)
    paths["html"] = write_html(
        out / "report.html",
        verdict,
        run,
        scenario=scenario,
        alerts=alerts,
        breaker_events=breaker_events,
        context=context,
        replay_command=replay_command,
    )
    return paths
