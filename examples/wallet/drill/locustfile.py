"""The wallet workload: client applications paying between their customers' wallets.

Run by Faultline through Locust; the generic part (history, seeded choices, pacing, the
load shape) is :class:`faultline.load.client.user.JepsenUser`. Each operation is one
method that calls ``self.call(...)``, which records ``invoke`` then ``ok`` (2xx: it
happened), ``fail`` (4xx or refused: it did not) or ``info`` (timeout, reset, 5xx: the
client cannot know).

Operations (the names Faultline's checkers read): ``transfer`` (a payment under a fresh
idempotency key), ``replay`` (the same key and body again: how a client retries after an
unknown outcome, and a replay of a finished payment), ``replay_diff`` (the same key, a
different amount: must be refused with 422), ``balance`` and ``statement`` (reads).

Two concurrent patterns are part of ``transfer`` (shares in ``load.params``):

- *double submit*: one key sent twice at once; the wallet makes one payment and answers
  both with it;
- *drain race*: two payments that each spend the payer's whole balance, at once; at most
  one may succeed.

The steady-state probe sends plain traffic only (no races).
"""

from __future__ import annotations

import math
import sys
from collections import deque
from decimal import Decimal
from pathlib import Path
from typing import Any

import gevent

from faultline.load.client.user import DRILL, DrillShape, JepsenUser, Outcome

# the example's package is not installed: make ``wallet`` importable from its folder
ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from wallet.drill._params import validate_params  # noqa: E402

__all__ = ["DrillShape", "WalletClient"]

PARAMS = validate_params(DRILL.params)
CURRENCY = "EUR"


def _euros(minor: int) -> str:
    return f"{Decimal(minor).scaleb(-2):.2f}"


class WalletClient(JepsenUser):
    """A client application of the wallet, moving money between its customers."""

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        clients = self.data.get("clients") or []
        me = clients[self.number % len(clients)] if clients else {}
        self.client_id = str(me.get("id", ""))
        self.auth = {"Authorization": f"Bearer {me.get('token', '')}"}
        self.wallets: list[str] = list(me.get("wallets", []))
        self.done: deque[tuple[str, dict[str, Any]]] = deque(maxlen=64)
        probe = self.settings.probe
        self.double_submit_share = 0.0 if probe else PARAMS["double_submit"]
        self.drain_share = 0.0 if probe else PARAMS["drain_race"]
        self.retries = int(PARAMS["retries"])

    # ------------------------------------------------------------ requests
    def _pay(self, f: str, key: str, body: dict[str, Any], process: str | None = None
             ) -> Outcome:
        value = {"from_account": body["payer"], "to_account": body["payee"],
                 "amount": int(Decimal(body["amount"]) * 100), "currency": body["currency"],
                 "merchant_id": self.client_id}
        return self.call(f, "POST", "/v1/payments", key=key, value=value, body=body,
                         headers={**self.auth, "Idempotency-Key": key}, process=process)

    def _balance(self, wallet: str) -> int | None:
        got = self.call("balance", "GET", f"/v1/wallets/{wallet}", value={"account": wallet},
                        headers=self.auth)
        raw = got.body.get("balance") if isinstance(got.body, dict) else None
        return int(Decimal(raw) * 100) if isinstance(raw, str) else None

    def _amount(self) -> int:
        drawn = self.rng.lognormvariate(math.log(PARAMS["amount_median"]), PARAMS["amount_sigma"])
        return max(1, min(int(drawn), 10**9))

    def _body(self, amount: int | None = None, payer: str | None = None) -> dict[str, Any]:
        if payer is None:
            payer, payee = self.rng.sample(self.wallets, 2)
        else:
            payee = self.rng.choice([w for w in self.wallets if w != payer])
        minor = amount if amount is not None else self._amount()
        return {"payer": payer, "payee": payee, "amount": _euros(minor), "currency": CURRENCY}

    def _settle_unknown(self, key: str, body: dict[str, Any], outcome: Outcome) -> Outcome:
        """A careful client: after an unknown outcome, retry with the same key and body
        until the answer is definite (bounded, with backoff)."""
        delay = 0.2
        for _ in range(self.retries):
            if outcome.type != "info" and outcome.status != 409:
                break
            gevent.sleep(delay)
            delay *= 2
            outcome = self._pay("replay", key, body)
        return outcome

    # ------------------------------------------------------------ operations
    def transfer(self) -> None:
        if len(self.wallets) < 2:
            return
        pick = self.rng.random()
        if pick < self.double_submit_share:
            self.double_submit()
            return
        if pick < self.double_submit_share + self.drain_share:
            self.drain_race()
            return
        body = self._body()
        key = self.new_key("w")
        outcome = self._settle_unknown(key, body, self._pay("transfer", key, body))
        if outcome.type == "ok":
            self.done.append((key, body))

    def double_submit(self) -> None:
        body = self._body()
        key = self.new_key("w")
        first = gevent.spawn(self._pay, "transfer", key, body)
        twin = gevent.spawn(self._pay, "replay", key, body, f"{self.process}b")
        gevent.joinall([first, twin])
        if first.value is not None and first.value.type == "ok":
            self.done.append((key, body))

    def drain_race(self) -> None:
        payer = self.rng.choice(self.wallets)
        balance = self._balance(payer)
        if balance is None or balance <= 0:
            return
        bodies = [self._body(balance, payer) for _ in range(2)]
        keys = [self.new_key("w") for _ in bodies]
        racers = [gevent.spawn(self._pay, "transfer", keys[0], bodies[0]),
                  gevent.spawn(self._pay, "transfer", keys[1], bodies[1], f"{self.process}b")]
        gevent.joinall(racers)

    def replay(self) -> None:
        if not self.done:
            self.transfer()
            return
        key, body = self.rng.choice(self.done)
        self._pay("replay", key, body)

    def replay_diff(self) -> None:
        if not self.done:
            self.transfer()
            return
        key, body = self.rng.choice(self.done)
        changed = int(Decimal(body["amount"]) * 100) + 1
        self._pay("replay_diff", key, {**body, "amount": _euros(changed)})

    def balance(self) -> None:
        if self.wallets:
            self._balance(self.rng.choice(self.wallets))

    def statement(self) -> None:
        if self.wallets:
            wallet = self.rng.choice(self.wallets)
            self.call("statement", "GET", f"/v1/wallets/{wallet}/statement?limit=10",
                      value={"account": wallet}, headers=self.auth, keep_body=False)
