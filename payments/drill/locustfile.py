"""The payment workload: merchants' backends calling the payments api, as Jepsen clients.

Run by the drill engine through Locust (``faultline.load``); the generic part — history
recording, seeded choices, pacing, the load shape, distributed load — is
:class:`faultline.load.client.user.JepsenUser`. This file is what a team writes for its
own system: one method per operation, each one ``self.call(...)``.

Operations (docs/contracts.md, history): ``transfer`` (fresh idempotency key),
``replay`` (same key, same body — also how a client retries after an unknown outcome),
``replay_diff`` (same key, different body: must be refused with 422), ``balance``,
``statement``. ``ok`` = 2xx, ``fail`` = 4xx or refused before sending, ``info`` =
timeout, reset or 5xx: the client cannot know whether it happened.

Amounts are heavy-tailed (log-normal), with transfers of exactly an account's balance or
one unit over it, and rare huge ones (``load.params``, ``payments/drill/_params.py``).
Two concurrent patterns real incidents came from are part of ``transfer``:

- *double submit*: the same key sent twice at once (a double click, an impatient
  retry): one transfer at most, the other answer is 409 or the stored response;
- *withdrawal race*: two transfers that each move the whole balance of one account at
  once (the Flexcoin drain): at most one may succeed on a non-negative account.

The steady-state probe sends plain traffic only (no races, no corner amounts).
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

import gevent

from faultline.load.client.user import DRILL, DrillShape, JepsenUser, Outcome
from payments.drill._params import validate_params

__all__ = ["DrillShape", "PaymentClient"]

PARAMS = validate_params(DRILL.params)
CURRENCY = "EUR"


class PaymentClient(JepsenUser):
    """A merchant's backend calling the payments api."""

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        merchants = self.data.get("merchants") or []
        self.merchant = (merchants[self.number % len(merchants)] if merchants
                         else {"id": "", "accounts": []})
        self.auth = {"Authorization": f"Bearer {self.merchant.get('api_key', '')}"}
        self.accounts: list[str] = list(self.merchant.get("accounts", []))
        self.done: deque[tuple[str, dict[str, Any]]] = deque(maxlen=64)
        self.races = 0.0 if self.settings.probe else PARAMS["races"]
        self.corners = not self.settings.probe

    # ------------------------------------------------------------ requests
    def _post(self, f: str, key: str, body: dict[str, Any], process: str | None = None) -> Outcome:
        return self.call(f, "POST", "/v1/transfers", key=key,
                         value={**body, "merchant_id": self.merchant.get("id")}, body=body,
                         headers={**self.auth, "Idempotency-Key": key}, process=process)

    def _balance(self, account: str) -> int | None:
        got = self.call("balance", "GET", f"/v1/accounts/{account}", value={"account": account},
                        headers=self.auth)
        balance = got.body.get("balance") if isinstance(got.body, dict) else None
        return balance if isinstance(balance, int) else None

    def _amount(self) -> int:
        """Heavy-tailed: log-normal around the median, capped, at least 1."""
        drawn = self.rng.lognormvariate(math.log(PARAMS["amount_median"]), PARAMS["amount_sigma"])
        return max(1, min(int(drawn), 10**12))

    def _body(self, amount: int | None = None, src: str | None = None) -> dict[str, Any]:
        if src is None:
            src, dst = self.rng.sample(self.accounts, 2)
        else:
            dst = self.rng.choice([a for a in self.accounts if a != src])
        return {"from_account": src, "to_account": dst,
                "amount": amount if amount is not None else self._amount(), "currency": CURRENCY}

    def _retry_unknown(self, key: str, body: dict[str, Any], outcome: Outcome) -> Outcome:
        """A careful client: after an unknown outcome (or 409 in flight), retry with the
        same key and body until it gets a definite answer (bounded)."""
        delay = 0.2
        for _ in range(3):
            if outcome.type == "ok" or (outcome.type == "fail" and outcome.status != 409):
                break
            gevent.sleep(delay)
            delay *= 2
            outcome = self._post("replay", key, body)
        return outcome

    # ------------------------------------------------------------ operations
    def transfer(self) -> None:
        if len(self.accounts) < 2:
            return
        pick = self.rng.random()
        if pick < self.races / 2:
            self.double_submit()
            return
        if pick < self.races:
            self.withdrawal_race()
            return
        body = self._corner_body(pick - self.races) if self.corners else self._body()
        if body is None:
            return
        key = self.new_key("t")
        outcome = self._retry_unknown(key, body, self._post("transfer", key, body))
        if outcome.type == "ok":
            self.done.append((key, body))

    def _corner_body(self, pick: float) -> dict[str, Any] | None:
        """An ordinary body, or (by the params' shares) one at the balance's edge or huge."""
        if pick < PARAMS["at_balance"]:
            src = self.rng.choice(self.accounts)
            balance = self._balance(src)
            if balance is None or balance <= 0:
                return None
            return self._body(balance + self.rng.choice((0, 1)), src)
        if pick < PARAMS["at_balance"] + PARAMS["huge"]:
            return self._body(self.rng.randint(10**6, 10**9))
        return self._body()

    def double_submit(self) -> None:
        body = self._body()
        key = self.new_key("t")
        first = gevent.spawn(self._post, "transfer", key, body)
        twin = gevent.spawn(self._post, "replay", key, body, f"{self.process}b")
        gevent.joinall([first, twin])
        if first.value is not None and first.value.type == "ok":
            self.done.append((key, body))

    def withdrawal_race(self) -> None:
        src = self.rng.choice(self.accounts)
        balance = self._balance(src)
        if balance is None or balance <= 0:
            return
        bodies = [self._body(balance, src) for _ in range(2)]
        keys = [self.new_key("t") for _ in bodies]
        racers = [gevent.spawn(self._post, "transfer", keys[0], bodies[0]),
                  gevent.spawn(self._post, "transfer", keys[1], bodies[1], f"{self.process}b")]
        gevent.joinall(racers)

    def replay(self) -> None:
        if not self.done:
            self.transfer()
            return
        key, body = self.rng.choice(self.done)
        self._post("replay", key, body)

    def replay_diff(self) -> None:
        if not self.done:
            self.transfer()
            return
        key, body = self.rng.choice(self.done)
        self._post("replay_diff", key, {**body, "amount": body["amount"] + 1})

    def balance(self) -> None:
        if self.accounts:
            self._balance(self.rng.choice(self.accounts))

    def statement(self) -> None:
        if self.accounts:
            acc = self.rng.choice(self.accounts)
            self.call("statement", "GET", f"/v1/accounts/{acc}/statement?limit=20",
                      value={"account": acc}, headers=self.auth, keep_body=False)
