"""The columnar checkers report what the in-memory checkers of before reported.

``golden_results.json`` was recorded by ``record_golden.py`` with the checkers as they
were before the rewrite (one record per planted bug of ``planted.py``, plus the SLOs,
phase statistics and series of the clean run). Every verdict, error record (type,
count, first, worst, last) and evidence must be the same; counts may only gain keys.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from checks_helpers import fresh_run
from planted import PLANTED
from record_golden import SCENARIO

from faultline.checks import CheckContext, check_slos, phase_stats, run_checks, timeseries
from faultline.scenario import parse_scenario

GOLDEN = json.loads((Path(__file__).parent / "golden_results.json").read_text(encoding="utf-8"))
#: counts the rewrite added (documented in docs/checks.md)
NEW_COUNTS = {"outbox_delivered": {"applied_not_in_stream"}}


def same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return (bool(a == b) and type(a) is type(b)) or (isinstance(a, int | float) and a == b)


def jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value))


@pytest.mark.parametrize("name", list(PLANTED))
def test_planted_bug_gives_the_golden_results(name: str) -> None:
    run = fresh_run()
    PLANTED[name](run)
    results = [jsonable(r.to_dict()) for r in run_checks(None, run.history, run.state, CheckContext())]
    golden = GOLDEN[name]
    assert [r["name"] for r in results] == [g["name"] for g in golden]
    for got, want in zip(results, golden, strict=True):
        for extra in NEW_COUNTS.get(got["name"], ()):
            got["counts"].pop(extra, None)
        assert same(got, want), (got["name"], got, want)


def test_slos_phases_and_series_are_the_golden_ones() -> None:
    run = fresh_run()
    ctx = CheckContext()
    slos = [jsonable(r.to_dict()) for r in check_slos(parse_scenario(SCENARIO), run.history, ctx)]
    assert same(slos, GOLDEN["_slos"])
    assert same(jsonable(phase_stats(run.history, ctx)), GOLDEN["_phase_stats"])
    assert same(jsonable(timeseries(run.history, bucket_s=0.1)), GOLDEN["_timeseries"])
