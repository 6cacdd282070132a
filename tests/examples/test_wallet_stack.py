"""The wallet's pieces on a real local stack (PostgreSQL, the fault proxy, gunicorn, the
notifier and the merchant's receiver), without the drill runner: its API keeps its
idempotency and funds contracts, its settle probe converges, its snapshot is in the
checkers' tables and holds the invariants, and its database traffic really crosses the
hop's proxy."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from faultline.checks import run_checks
from faultline.proxy.client import ProxyClient
from faultline.stack import LocalStack, StackInfo
from faultline.system import DictSink, SystemProfile, load_profile

pytestmark = [pytest.mark.stack]


@pytest.fixture(scope="module", params=[(), ("unlocked_balance_check",)],
                ids=["correct", "unlocked_balance_check"])
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[tuple[LocalStack, StackInfo]]:
    from wallet.drill._topology import local_topology

    launcher = LocalStack(local_topology(), run_dir=tmp_path_factory.mktemp("wallet"),
                          bugs=list(request.param))
    try:
        yield launcher, launcher.start()
    finally:
        launcher.stop()


def _api(info: StackInfo, client: int = 0) -> tuple[httpx.Client, list[str]]:
    me = info.workload_data["clients"][client]
    http = httpx.Client(base_url=info.base_url, timeout=10,
                        headers={"Authorization": f"Bearer {me['token']}"})
    return http, list(me["wallets"])


def _balance(http: httpx.Client, wallet: str) -> Decimal:
    return Decimal(http.get(f"/v1/wallets/{wallet}").json()["balance"])


def _pay(http: httpx.Client, key: str, payer: str, payee: str, amount: str) -> httpx.Response:
    return http.post("/v1/payments", headers={"Idempotency-Key": key},
                     json={"payer": payer, "payee": payee, "amount": amount, "currency": "EUR"})


def test_idempotency_and_funds_contract(stack: tuple[LocalStack, StackInfo]) -> None:
    _, info = stack
    http, (a, b, c, *_) = _api(info)
    key = f"t-{uuid.uuid4()}"
    first = _pay(http, key, a, b, "12.34")
    assert first.status_code == 201, first.text
    again = _pay(http, key, a, b, "12.34")
    assert (again.status_code, again.json()) == (201, first.json())
    assert again.headers["Idempotent-Replayed"] == "true"
    other = _pay(http, key, a, b, "12.35")
    assert (other.status_code, other.json()["error"]["code"]) == (422, "idempotency_key_reused")
    assert _balance(http, a) == Decimal("487.66")
    # a decline is kept under its key: the retry gets the same answer
    big = f"t-{uuid.uuid4()}"
    declined = _pay(http, big, c, b, "10000.00")
    assert declined.status_code == 402
    assert declined.json()["payment"]["status"] == "declined"
    assert _pay(http, big, c, b, "10000.00").json() == declined.json()
    # another client's wallet does not exist for this one
    stranger, theirs = _api(info, client=1)
    assert _pay(stranger, f"t-{uuid.uuid4()}", theirs[0], a, "1.00").status_code == 404
    assert http.get("/v1/wallets/" + theirs[0]).status_code == 404
    statement = http.get(f"/v1/wallets/{a}/statement?limit=5").json()
    assert [leg["type"] for leg in statement["legs"]] == ["DR", "CR"]


def test_concurrent_drains(stack: tuple[LocalStack, StackInfo]) -> None:
    """Eight payments of a wallet's whole balance at once: with the row lock exactly one
    succeeds; with ``unlocked_balance_check`` (a race: a few rounds) several do and the
    wallet goes negative."""
    launcher, info = stack
    http, wallets = _api(info, client=1)
    start = threading.Barrier(8)

    def drain(payer: str, payee: str, whole: str) -> int:
        start.wait(timeout=10)
        return _pay(http, f"d-{uuid.uuid4()}", payer, payee, whole).status_code

    for payer in wallets[:4]:
        whole = f"{_balance(http, payer):.2f}"
        payees = [w for w in wallets if w != payer]
        with ThreadPoolExecutor(8) as pool:
            codes = sorted(pool.map(drain, [payer] * 8, [payees[i % len(payees)]
                                                        for i in range(8)], [whole] * 8))
        if not launcher.bugs:
            assert codes == [201] + [402] * 7
            assert _balance(http, payer) == 0
        elif codes.count(201) > 1:
            assert _balance(http, payer) < 0
            return
    assert not launcher.bugs, "four rounds of concurrent drains never overdrew a wallet"


def _settled(profile: SystemProfile, info: StackInfo, limit: float = 15.0) -> list[str]:
    deadline = time.monotonic() + limit
    while (left := profile.settle_status(info)) and time.monotonic() < deadline:
        time.sleep(0.25)
    return left


def test_snapshot_holds_the_invariants(stack: tuple[LocalStack, StackInfo]) -> None:
    launcher, info = stack
    profile = load_profile("wallet.drill:PROFILE")
    assert _settled(profile, info) == []  # every webhook delivered, no API transaction open
    sink = DictSink()
    profile.snapshot(info, sink)
    state = sink.state
    assert set(state) == {"accounts", "transfers", "entries", "idempotency", "outbox",
                          "stream", "processed_events", "projections", "external_inflow"}
    funded = info.workload_data["funded_minor"]
    assert state["external_inflow"] == {"EUR": funded}
    issuance = [a for a in state["accounts"] if a["kind"] == "issuance"]
    assert [a["balance"] for a in issuance] == [-funded]
    assert all(e["transfer_id"] in {t["id"] for t in state["transfers"]}
               for e in state["entries"])
    assert all(t["status"] == "completed" for t in state["transfers"])
    results = {r.name: r.valid for r in run_checks(
        ["conservation", "balanced_entries", "non_negative", "outbox_delivered",
         "projection_converges"], [], state)}
    overdrawn = bool(launcher.bugs)  # the concurrent drains above overdrew a wallet
    assert results == {"conservation": True, "balanced_entries": True,
                       "non_negative": not overdrawn, "outbox_delivered": True,
                       "projection_converges": True}


def test_database_traffic_crosses_the_hop(stack: tuple[LocalStack, StackInfo]) -> None:
    _, info = stack
    assert info.hops == {"wallet->postgres": "wallet_postgres",
                         "notifier->postgres": "notifier_postgres",
                         "notifier->merchant": "notifier_merchant",
                         "merchant->postgres": "merchant_postgres"}
    assert info.proxy_url is not None
    proxy = ProxyClient(info.proxy_url)
    ready = httpx.Client(base_url=info.base_url, timeout=10)
    assert ready.get("/readyz").status_code == 200
    proxy.disable_proxy("wallet_postgres")
    try:
        assert ready.get("/readyz").status_code == 503
    finally:
        proxy.enable_proxy("wallet_postgres")
    assert ready.get("/readyz").status_code == 200


def test_workload_data_is_private(stack: tuple[LocalStack, StackInfo]) -> None:
    _, info = stack
    assert info.run_dir is not None
    assert (Path(info.run_dir) / "stack.json").stat().st_mode & 0o777 == 0o600
