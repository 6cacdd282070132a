"""The wallet's profile without a stack: found by module path, built from Faultline's
public API only, its scenarios valid against it, every hop through the fault proxy."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from faultline.scenario import ScenarioError, load_scenario
from faultline.stack import LocalTopology, Wiring
from faultline.system import SystemProfile, load_profile

WALLET = Path(__file__).resolve().parents[2] / "examples" / "wallet"
SPEC = "wallet.drill:PROFILE"


@pytest.fixture(scope="module")
def profile() -> SystemProfile:
    return load_profile(SPEC)


def test_found_by_module_path(profile: SystemProfile) -> None:
    assert profile.name == "wallet"
    assert profile.targets == ("local",)
    assert [h.name for h in profile.hops] == ["wallet->postgres", "notifier->postgres",
                                              "notifier->merchant", "merchant->postgres"]
    assert profile.hop("notifier->merchant").protocol == "http"
    assert {s.name for s in profile.services} == {"postgres", "wallet", "notifier", "merchant"}
    assert profile.invariants == ("conservation", "balanced_entries", "non_negative",
                                  "acknowledged_exactly_once", "idempotent_replay",
                                  "outbox_delivered", "projection_converges")
    assert set(profile.bugs) == {"idempotency_after_commit", "unlocked_balance_check",
                                 "webhook_marked_before_send", "merchant_applies_twice"}
    assert profile.workload.locustfile.is_file()


def test_profile_uses_only_faultline_public_api() -> None:
    """The drill imports ``faultline.system``, ``faultline.stack`` and the Locust client,
    nothing private; and nothing of the service but its bug table."""
    allowed = {"faultline.system", "faultline.stack", "faultline.load.client.user",
               "wallet.bugs"}
    for path in (WALLET / "drill").glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                name = node.module
            elif isinstance(node, ast.Import):
                name = node.names[0].name
            else:
                continue
            if name.startswith(("faultline", "wallet")):
                assert name in allowed or name.startswith("wallet.drill"), (path.name, name)


@pytest.mark.parametrize("scenario", sorted(p.name for p in (WALLET / "scenarios").glob("*.yaml")))
def test_scenarios_are_valid(scenario: str, profile: SystemProfile) -> None:
    scn = load_scenario(WALLET / "scenarios" / scenario)
    assert scn.system == SPEC
    assert scn.checks == list(profile.invariants)
    assert scn.faults
    assert scn.description


def test_a_foreign_hop_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"name: bad\nsystem: {SPEC}\nload: {{duration: 5s}}\n"
                   "faults: [{at: 1s, for: 1s, hop: api->postgres, toxic: latency, "
                   "latency: 10ms}]\n")
    with pytest.raises(ScenarioError, match="unknown hop 'api->postgres' of system wallet"):
        load_scenario(bad)


def test_params_are_checked(profile: SystemProfile) -> None:
    check = profile.workload.validate_params
    assert check is not None
    assert check({"drain_race": 0.5})["drain_race"] == 0.5
    with pytest.raises(ValueError, match="unknown wallet load param 'races'"):
        check({"races": 0.1})
    with pytest.raises(ValueError, match="must not exceed 1"):
        check({"drain_race": 0.6, "double_submit": 0.6})


def test_every_app_reaches_the_others_through_its_hops() -> None:
    from wallet.drill._topology import local_topology

    topo: LocalTopology = local_topology()
    listen = {h.proxy: 6000 + i for i, h in enumerate(topo.hops)}
    wiring = Wiring(run_dir=Path("/nonexistent"), bugs=["unlocked_balance_check"],
                    topology=topo, listen=listen,
                    ports={"postgres": 5432, "wallet": 8000, "notifier": 8001,
                           "merchant": 8002})
    env = {app.name: app.env(wiring) for app in topo.apps}
    assert env["wallet"]["WALLET_DATABASE_URL"].endswith(
        f"@127.0.0.1:{listen['wallet_postgres']}/wallet")
    assert env["notifier"]["WALLET_DATABASE_URL"].endswith(
        f"@127.0.0.1:{listen['notifier_postgres']}/wallet")
    assert env["notifier"]["WALLET_WEBHOOK_URL"] == (
        f"http://127.0.0.1:{listen['notifier_merchant']}/webhooks")
    assert env["merchant"]["MERCHANT_DATABASE_URL"].endswith(
        f"@127.0.0.1:{listen['merchant_postgres']}/merchant")
    common = topo.env(wiring)
    assert common["WALLET_BUGS"] == "unlocked_balance_check"
    assert common["WALLET_WEBHOOK_SECRET"]
    # the oracle's own addresses go direct, never through a proxy
    assert topo.endpoints(wiring) == {
        "database_url": "postgresql://faultline:faultline@127.0.0.1:5432/wallet",
        "merchant_database_url": "postgresql://faultline:faultline@127.0.0.1:5432/merchant"}
