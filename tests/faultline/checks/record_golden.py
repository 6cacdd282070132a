"""Record ``golden_results.json``: what the checkers report for every planted bug.

Run once, before the columnar rewrite, with the in-memory checkers of that time
(``.venv/bin/python tests/faultline/checks/record_golden.py``); the tests then pin the
checkers that read runs from disk to these verdicts and error records. Never re-record
it from the code it pins.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from checks_helpers import fresh_run
from planted import PLANTED

from faultline.checks import CheckContext, check_slos, phase_stats, run_checks, timeseries
from faultline.scenario import parse_scenario

SCENARIO = """
name: golden
load: {duration: 30s}
faults: [{at: 10s, for: 10s, hop: api->postgres, toxic: latency, latency: 50}]
slos:
  - {phase: before, p50_ms: 20, p99_ms: 15, error_rate: 0.01, throughput: 50}
  - {phase: during, p99_ms: {below: 100}, error_rate: 0.3}
  - {phase: after, error_rate: 0.5, recover_within: 3s}
"""


def record() -> dict[str, object]:
    out: dict[str, object] = {}
    for name, plant in PLANTED.items():
        run = fresh_run()
        plant(run)
        out[name] = [r.to_dict() for r in run_checks(None, run.history, run.state, CheckContext())]
    run = fresh_run()
    scn = parse_scenario(SCENARIO)
    ctx = CheckContext()
    out["_slos"] = [r.to_dict() for r in check_slos(scn, run.history, ctx)]
    out["_phase_stats"] = phase_stats(run.history, ctx)
    out["_timeseries"] = timeseries(run.history, bucket_s=0.1)
    return out


if __name__ == "__main__":
    path = Path(__file__).parent / "golden_results.json"
    path.write_text(json.dumps(record(), indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {path}")
