"""One seed replays every decision Faultline makes: the fault proxy's (which exchanges a
toxic hit) and the load's (each user's operations, accounts, amounts, keys).

Two runs of one scenario with the same seed, on one shared stack (the proxy is reseeded
per drill), make the same decisions; a third with another seed makes other ones. What a
replay cannot reproduce — which request turns out to be the n-th exchange, how many
operations fit in the time, the outcomes — is left out of the comparison on purpose.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from faultline.drill import DrillOptions, StackPool, run_drill

pytestmark = [pytest.mark.stack, pytest.mark.slow]

DRILL = Path(__file__).resolve().parent / "drills" / "replay.yaml"


def _decisions(run: Path) -> tuple[set[int], int]:
    """The decision ordinals under which the toxic acted, and how many it made."""
    hit: set[int] = set()
    seeds = []
    for raw in (run / "proxy-events.jsonl").read_text().splitlines():
        event = json.loads(raw)
        if event["event"] == "seed_set":
            seeds.append(event["seed"])
        if event["event"] == "toxic_fired" and event["toxic"]["name"] == "faultline-0":
            assert event["decisions_more"] == 0
            hit.update(event["decisions"])
    assert seeds, "the drill's proxy events record its seed"
    fault = json.loads((run / "verdict.json").read_text())["faults"][0]
    return hit, int(fault["seen"]["exchanges"])


def _choices(run: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Per user, the operations it chose, in order (retries, which follow outcomes, left
    out), with the run's tag taken off the idempotency keys."""
    out: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    for raw in (run / "history.jsonl").read_text().splitlines():
        line = json.loads(raw)
        if line["type"] != "invoke" or line["process"] == "nemesis" or line["f"] == "replay":
            continue
        user = line["process"].split("-", 2)[-1]  # w0-p<pid>-u3 -> u3 (pids differ)
        key = (line.get("key") or "").rsplit("-", 1)[0]
        out[user].append((line["f"], key, json.dumps(line.get("value"), sort_keys=True)))
    return out


def _same_prefix(a: dict[str, list[Any]], b: dict[str, list[Any]]) -> int:
    """How many choices the two runs share, user by user (asserting they agree)."""
    assert set(a) == set(b)
    compared = 0
    for user in a:
        n = min(len(a[user]), len(b[user]))
        assert a[user][:n] == b[user][:n], f"{user} chose differently"
        compared += n
    return compared


def test_the_same_seed_replays_the_decisions_another_seed_does_not(tmp_path: Path) -> None:
    pool = StackPool(reuse=True)
    try:
        runs = []
        for seed in (7, 7, 8):
            outcome = run_drill(DRILL, DrillOptions(runs_dir=tmp_path, seed=seed,
                                                    progress=False), pool=pool)
            assert outcome.exit_code == 0, outcome.summary
            assert outcome.run_dir is not None
            runs.append(outcome.run_dir)
    finally:
        pool.close()
    (hit_a, made_a), (hit_b, made_b), (hit_c, made_c) = (_decisions(r) for r in runs)
    n = min(made_a, made_b)
    assert n > 50
    same = {d for d in hit_a if d < n}
    assert same == {d for d in hit_b if d < n}  # the same exchanges of the sequence hit
    assert same, "the toxic acted"
    m = min(made_a, made_c)
    assert {d for d in hit_a if d < m} != {d for d in hit_c if d < m}
    choices = [_choices(r) for r in runs]
    assert _same_prefix(choices[0], choices[1]) > 50
    with pytest.raises(AssertionError, match="chose differently"):
        _same_prefix(choices[0], choices[2])
