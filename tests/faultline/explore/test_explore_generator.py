"""The schedule generator: seeded, only valid scenarios, and the whole space reachable.

Every drawn drill must load through the ordinary scenario loader against the profile
(the engine runs nothing else), the same seed must draw the same drills whatever order
they are drawn in, and over many draws every hop, toxic, service, fault kind, action,
trigger and pattern must come up — while nothing the profile forbids (``http_error`` on
a database hop, a kill of a service that only restarts) ever does.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from faultline.explore import PATTERNS, DrillGenerator, FaultSpace, derive_seed, try_seeds
from faultline.explore._atoms import READY_MARGIN
from faultline.explore._draw import Drill, without_conflicts
from faultline.scenario import SIGNALS, TOXIC_TYPES, KillFault, ToxicFault, parse_scenario
from faultline.system import Hop, Service, SystemProfile, load_profile

PAYMENTS = load_profile("payments")
#: draws for the reachability test: enough that a choice of ~1 % shows up, fast (~2 s)
MANY = 1000


@pytest.fixture(scope="module")
def drawn() -> list[Any]:
    generator = DrillGenerator(FaultSpace.from_profile(PAYMENTS), seed=11)
    return [generator.draw(i) for i in range(1, MANY + 1)]


@pytest.fixture(scope="module")
def parsed(drawn: list[Any]) -> list[Any]:
    return [parse_scenario(d.text(), d.name, profile=PAYMENTS) for d in drawn]


def test_the_same_seed_draws_the_same_drills_in_any_order() -> None:
    space = FaultSpace.from_profile(PAYMENTS)
    forward = [DrillGenerator(space, 5).draw(i).text() for i in range(1, 31)]
    backward = [DrillGenerator(space, 5).draw(i).text() for i in range(30, 0, -1)]
    assert forward == backward[::-1]
    other = [DrillGenerator(space, 6).draw(i).text() for i in range(1, 31)]
    assert sum(a != b for a, b in zip(forward, other, strict=True)) >= 29
    # each drill has its own scenario seed (the load's and the proxy's rolls)
    seeds = [DrillGenerator(space, 5).draw(i).seed for i in range(1, 31)]
    assert len(set(seeds)) == 30


def test_seed_derivation_is_pinned() -> None:
    """Recorded explorations replay only while these stay what they were."""
    assert derive_seed("draw", 1, 1) == 2087673595
    assert try_seeds(7, 3)[0] == 7
    assert try_seeds(7, 3) == [7, derive_seed("try", 7, 1), derive_seed("try", 7, 2)]
    assert all(0 <= s < 2**31 for s in try_seeds(123, 10))


def test_every_drawn_drill_is_a_valid_scenario(drawn: list[Any], parsed: list[Any]) -> None:
    for drill, scn in zip(drawn, parsed, strict=True):
        assert scn.name == drill.name
        assert scn.seed == drill.seed
        assert len(scn.faults) == len(drill.faults) >= 1
        assert 10 <= scn.load.duration <= 18
        for fault in scn.faults:
            assert fault.at < scn.load.duration
            if fault.end is not None:  # windows heal before the load ends
                assert fault.end < scn.load.duration, drill.text()


def test_no_process_fault_lands_on_a_service_an_earlier_one_holds(parsed: list[Any]) -> None:
    """A kill of a service still down from the last kill (or a pause of a frozen one)
    touches nothing and only makes the drill vacuous: the generator never draws it."""
    checked = 0
    for scn in parsed:
        held: dict[str, float] = {}
        for fault in sorted(scn.faults, key=lambda f: f.at):
            if fault.kind not in ("kill", "pause", "restart") or fault.when is not None:
                continue
            assert fault.at >= held.get(fault.service, float("-inf")), scn.name
            if fault.kind == "kill":
                after = fault.restart_after
                held[fault.service] = (fault.at + after + READY_MARGIN if after is not None
                                       else float("inf"))
            elif fault.kind == "pause":
                held[fault.service] = fault.end
            else:
                held[fault.service] = fault.at + READY_MARGIN
            checked += 1
    assert checked > 200


def test_conflicting_process_faults_are_dropped() -> None:
    faults = [{"at": 1.0, "kill": "api", "restart_after": 1.5},
              {"at": 2.0, "kill": "api"},                     # still down: dropped
              {"at": 2.0, "pause": "relay", "for": 3.0},
              {"at": 2.5, "kill": "relay"},                    # frozen: dropped
              {"at": 2.6, "hop": "api->postgres", "toxic": "down", "for": 1.0},
              {"at": 3.6, "kill": "api", "signal": "SIGTERM"},  # back and ready: kept
              {"at": 4.0, "kill": "api", "when": {"operations": 5}}]  # start unknown: kept
    kept = without_conflicts(faults, duration=12.0)
    assert kept == [faults[0], faults[2], faults[4], faults[5], faults[6]]


def test_the_whole_space_is_reachable(parsed: list[Any]) -> None:
    seen: Counter[str] = Counter()
    for scn in parsed:
        seen[f"profile:{scn.load.profile}"] += 1
        for f in scn.faults:
            seen[f"kind:{f.kind}"] += 1
            if f.when is not None:
                seen["when:" + ("operations" if f.when.operations else "metric")] += 1
            if isinstance(f, ToxicFault):
                seen[f"hop:{f.hop}"] += 1
                seen[f"toxic:{f.toxic}"] += 1
                if f.toxic != "down":
                    seen[f"stream:{f.stream}"] += 1
                    seen[f"scope:{f.scope}"] += 1
                    seen["toxicity<1" if f.toxicity < 1 else "toxicity=1"] += 1
            elif f.kind == "action":
                seen[f"action:{f.target}"] += 1
            else:
                seen[f"service:{f.target}"] += 1
                seen[f"{f.kind}:{f.target}"] += 1
            if isinstance(f, KillFault):
                seen[f"signal:{f.signal}"] += 1
                seen["restart_after" if f.restart_after is not None else "stays_down"] += 1
    expected = {f"hop:{h.name}" for h in PAYMENTS.hops}
    expected |= {f"toxic:{t}" for t in TOXIC_TYPES}
    expected |= {f"service:{s.name}" for s in PAYMENTS.services}
    expected |= {f"{k}:{s.name}" for s in PAYMENTS.services for k in s.faults}
    expected |= {f"kind:{k}" for k in ("toxic", "kill", "pause", "restart", "action")}
    expected |= {f"action:{a}" for a in PAYMENTS.actions}
    expected |= {f"signal:{s}" for s in SIGNALS}
    expected |= {"when:operations", "when:metric", "stream:upstream", "stream:downstream",
                 "scope:connection", "scope:exchange", "toxicity<1", "toxicity=1",
                 "restart_after", "stays_down", "profile:steady", "profile:ramp",
                 "profile:spike"}
    assert expected - set(seen) == set()


def test_every_pattern_is_drawn(drawn: list[Any]) -> None:
    patterns = Counter(item.split(":", 1)[1] for d in drawn for item in d.items
                       if item.startswith("pattern:"))
    assert set(patterns) == set(PATTERNS)
    overlapping = 0
    for d in drawn:
        windows = [(f["at"], f["at"] + f.get("for", 0)) for f in d.faults]
        overlapping += any(a[0] < b[0] < a[1] for a in windows for b in windows if a != b)
    assert overlapping > MANY // 5  # faults overlap, as in incidents


def test_protocols_are_respected(parsed: list[Any]) -> None:
    http = {h.name for h in PAYMENTS.hops if h.protocol == "http"}
    errors = [f.hop for scn in parsed for f in scn.faults
              if isinstance(f, ToxicFault) and f.toxic == "http_error"]
    assert errors
    assert set(errors) <= http


def _profile(**changes: Any) -> SystemProfile:
    fields = {"name": "shop", "description": "a test system",
              "hops": (Hop("web->db", "web_db", "web", "db", "postgres"),
                       Hop("web->search", "web_search", "web", "search", "http"),
                       Hop("web->queue", "web_queue", "web", "queue", "tcp")),
              "services": (Service("db", "database", faults=("restart",)),
                           Service("web", "api"),
                           Service("queue", "queue", faults=("pause",))),
              "workload": PAYMENTS.workload, "invariants": ("conservation",),
              "launchers": {"local": lambda **kw: None}, "snapshot": lambda s, k: None,
              "settle_status": lambda s: []}
    fields.update(changes)
    return SystemProfile(**fields)


def test_the_space_is_built_from_the_profile_and_grows_with_it() -> None:
    shop = _profile()
    drills = [DrillGenerator(FaultSpace.from_profile(shop), 3).draw(i) for i in range(1, 301)]
    faults = [f for d in drills for f in d.faults]
    assert {f["hop"] for f in faults if "hop" in f} == {"web->db", "web->search", "web->queue"}
    assert {f["kill"] for f in faults if "kill" in f} == {"web"}  # db restarts only
    assert {f["pause"] for f in faults if "pause" in f} == {"web", "queue"}
    assert {f["restart"] for f in faults if "restart" in f} == {"db", "web"}
    assert {f["hop"] for f in faults if f.get("toxic") == "http_error"} == {"web->search"}
    assert not [f for f in faults if "action" in f]  # it has none
    grown = _profile(hops=(*shop.hops, Hop("web->cache", "web_cache", "web", "cache", "redis")))
    more = [f for i in range(1, 301)
            for f in DrillGenerator(FaultSpace.from_profile(grown), 3).draw(i).faults]
    assert "web->cache" in {f.get("hop") for f in more}


def test_a_target_without_process_control_draws_no_process_fault() -> None:
    space = FaultSpace.from_profile(PAYMENTS, controls=frozenset(),
                                    hops=[h.name for h in PAYMENTS.hops[:3]])
    assert set(space.kinds) <= {"toxic", "action", "pattern"}
    for i in range(1, 200):
        drill = DrillGenerator(space, 1, stack="external").draw(i)
        assert drill.data["stack"] == "external"
        for f in drill.faults:
            assert not {"kill", "pause", "restart"} & set(f)
            assert f.get("hop", "api->postgres") in space.hops


def test_drawn_files_replay_on_their_own(tmp_path: Path) -> None:
    """A drawn file names its system and target, so ``faultline run FILE`` needs
    nothing else."""
    drill = DrillGenerator(FaultSpace.from_profile(PAYMENTS), 2, stack="compose",
                           system="payments.drill:PROFILE").draw(4)
    path = tmp_path / "d.yaml"
    path.write_text(drill.text())
    text = path.read_text()
    assert "system: payments.drill:PROFILE" in text
    assert "stack: compose" in text
    assert text.startswith("# drawn by: faultline explore --seed 2 (drill 4")


def test_the_public_surface_is_pinned() -> None:
    import importlib
    import pkgutil

    import faultline.explore as explore

    public = {n for n in dir(explore) if n.isidentifier() and not n.startswith("_")}
    modules = {m.name for m in pkgutil.iter_modules(explore.__path__)}
    assert len(explore.__all__) == len(set(explore.__all__))  # ruff keeps it sorted
    assert set(explore.__all__) == public - modules
    for name in modules:  # every private module says what it exports, and has it
        module = importlib.import_module(f"faultline.explore.{name}")
        assert all(hasattr(module, n) for n in module.__all__), name


def test_hops_are_drawn_in_proportion_to_their_traffic() -> None:
    """A toxic on a hop that carries nothing touches nothing: the profile's ``traffic``
    weights the draw (payments: api->postgres 3, api->redis 0.1, the rest 1)."""
    space = FaultSpace.from_profile(PAYMENTS)
    assert space.hops["api->postgres"] == 3.0
    assert space.hops["api->redis"] == 0.1
    generator = DrillGenerator(space.replace(kinds={"toxic": 1.0}), seed=2)
    hops = Counter(f["hop"] for i in range(1, 1501) for f in generator.draw(i).faults)
    ordinary = sum(hops[h] for h in ("relay->redis", "worker->redis")) / 2
    assert 2.3 < hops["api->postgres"] / ordinary < 3.9
    assert hops["api->redis"] / ordinary < 0.25
    shop = _profile(hops=(Hop("web->db", "web_db", "web", "db", "postgres", traffic=0),
                          Hop("web->queue", "web_queue", "web", "queue", "tcp")))
    assert "web->db" not in FaultSpace.from_profile(shop).hops  # 0: never drawn
    with pytest.raises(ValueError, match="web->db: traffic must be 0 or more"):
        Hop("web->db", "web_db", "web", "db", "postgres", traffic=-1)


def test_a_long_name_in_a_description_is_not_cut_in_two() -> None:
    """A folded description joins its lines with spaces: a drill name split across two
    lines would read ``ex plore-001-...`` (the first proof's minimal.yaml did)."""
    long = "explore-001-lost_ack-relay-postgres-then-stall-api-postgres-when-breaker_state" * 2
    data = {"name": "x", "description": f"Found in drill 1 ({long}) by a long search.",
            "seed": 1, "load": {"profile": "steady", "users": 1, "duration": 4.0},
            "faults": []}
    scn = parse_scenario(Drill(1, data).text(), "x.yaml", profile=PAYMENTS)
    assert f"({long})" in scn.description


def test_no_toxic_is_drawn_onto_a_hop_nobody_can_send_on() -> None:
    """A toxic whose whole window falls while every service talking through its hop is
    dead or frozen touches nothing (the api killed for good, then its database hop
    stalled: the second exploration of the correct stack drew it, vacuous)."""
    sources = {"api->postgres": ("api",), "worker->redis": ("worker-1", "worker-2")}
    faults = [{"at": 1.5, "kill": "api", "signal": "SIGKILL"},                     # for good
              {"at": 2.0, "for": 3.0, "pause": "worker-1"},
              {"at": 3.0, "for": 1.0, "hop": "worker->redis", "toxic": "latency"},  # worker-2
              {"at": 9.0, "for": 6.0, "hop": "api->postgres", "toxic": "stall"},    # dropped
              {"at": 9.5, "for": 1.0, "hop": "api->postgres", "toxic": "latency",
               "when": {"operations": 5}}]                                           # unknown
    assert without_conflicts(faults, 16.0, sources) == [faults[0], faults[1], faults[2],
                                                        faults[4]]
    back = [{"at": 2.0, "kill": "api", "restart_after": 2.0},
            {"at": 2.5, "for": 1.0, "hop": "api->postgres", "toxic": "down"},      # dropped
            {"at": 3.0, "for": 3.0, "hop": "api->postgres", "toxic": "latency"}]   # outlives it
    assert without_conflicts(back, 16.0, sources) == [back[0], back[2]]
    assert without_conflicts(faults, 16.0) == faults  # without sources: process faults only
    generator = DrillGenerator(FaultSpace.from_profile(PAYMENTS), 1)
    assert generator.sources["worker->redis"] == ("worker-1", "worker-2")  # by role
    assert generator.sources["replication"] == ("replica",)


def test_a_flapping_hop_expects_an_effect_of_its_first_cut_only() -> None:
    """The first cut must cut something; a later one may find the clients backed off
    (a breaker open after the first): ``expect_effect: false`` (the second exploration
    of the correct stack called a flap whose second cut found nothing vacuous)."""
    import random

    space = FaultSpace.from_profile(PAYMENTS)
    load = {"profile": "steady", "users": 8, "duration": 16.0}
    for n in range(200):
        _, faults = PATTERNS["slow_and_flapping"].draw(random.Random(n), space, load)
        slow, *cuts = faults
        assert slow["toxic"] == "latency"
        assert len(cuts) >= 2
        assert all(c["toxic"] == "down" for c in cuts)
        assert "expect_effect" not in cuts[0]
        assert all(c["expect_effect"] is False for c in cuts[1:])
