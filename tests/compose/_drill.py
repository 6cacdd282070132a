"""A small drill for the compose tests: client load, one nemesis action, settle, check.

The same split as the drill engine (contracts §6): only the client talks to the api and
records invoke/ok/fail/info; only the nemesis injects faults (its lines share the clock);
the checkers (faultline.checks) read the history and a final-state snapshot taken through
the published ports.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class History:
    """Thread-safe append-only history (client and nemesis lines)."""

    lines: list[dict[str, Any]] = field(default_factory=list)
    _counter: itertools.count[int] = field(default_factory=itertools.count)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, line: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            line = {"index": next(self._counter), **line}
            line.setdefault("time", time.monotonic_ns())
            line.setdefault("wall", time.time())
            self.lines.append(line)
        return line

    def dump(self, path: Path) -> None:
        path.write_text("".join(json.dumps(x, default=str) + "\n" for x in self.lines))


async def _client(history: History, api: str, merchant: dict[str, Any], process: str,
                  stop_at: float, rng: random.Random) -> None:
    import httpx

    accounts = merchant["accounts"]
    headers = {"Authorization": f"Bearer {merchant['api_key']}"}
    done: list[tuple[str, dict[str, Any]]] = []
    async with httpx.AsyncClient(base_url=api, headers=headers, timeout=3.0) as http:
        while time.monotonic() < stop_at:
            if done and rng.random() < 0.1:
                f, (key, body) = "replay", rng.choice(done)
            else:
                src, dst = rng.sample(accounts, 2)
                f, key = "transfer", str(uuid.uuid4())
                body = {"from_account": src, "to_account": dst,
                        "amount": rng.randint(1, 500), "currency": "EUR"}
            value = {**body, "merchant_id": merchant["id"]}
            history.add({"type": "invoke", "process": process, "f": f, "key": key, "value": value})
            started = time.monotonic()
            line: dict[str, Any] = {"process": process, "f": f, "key": key, "value": value}
            try:
                reply = await http.post("/v1/transfers", json=body, headers={"Idempotency-Key": key})
            except Exception as exc:  # timeout, reset, refused after sending: unknown
                line.update(type="info", error=type(exc).__name__)
            else:
                try:
                    data = reply.json()
                except ValueError:
                    data = None
                line.update(status=reply.status_code, body=data)
                if 200 <= reply.status_code < 300:
                    line["type"] = "ok"
                    if f == "transfer":
                        done.append((key, body))
                elif 400 <= reply.status_code < 500:
                    line["type"] = "fail"
                else:
                    line["type"] = "info"
            line["latency_ms"] = round((time.monotonic() - started) * 1000, 2)
            history.add(line)
            await asyncio.sleep(0.01)


async def snapshot(info: Any) -> dict[str, Any]:
    from payments.snapshot import take_snapshot

    return dict(await take_snapshot(info.database_url, info.redis_url))


def _settled(state: dict[str, Any]) -> bool:
    events = {o["event_id"] for o in state.get("outbox", [])}
    published = all(o.get("published_at") for o in state.get("outbox", []))
    processed = {p["event_id"] for p in state.get("processed_events", [])}
    return published and events <= processed


async def run_drill(
    name: str,
    info: Any,
    out_dir: Path,
    nemesis_action: Callable[[History], None],
    *,
    duration: float = 14.0,
    fault_at: float = 4.0,
    clients: int = 6,
    settle: float = 45.0,
    seed: int = 7,
) -> tuple[list[Any], History, dict[str, Any]]:
    """Load for ``duration`` s, run ``nemesis_action`` (in a thread) at ``fault_at`` s,
    settle until every event is applied (or ``settle`` s), then run every invariant."""
    from faultline.checks import CheckContext, run_checks

    out = out_dir / name
    out.mkdir(parents=True, exist_ok=True)
    history = History()
    baseline = await snapshot(info)
    merchants = info.seed["merchants"]
    rng = random.Random(seed)
    stop_at = time.monotonic() + duration
    start_ns = time.monotonic_ns()
    load = [
        asyncio.create_task(_client(history, info.api_url, merchants[i % len(merchants)],
                                    f"c{i}", stop_at, random.Random(rng.random())))
        for i in range(clients)
    ]
    await asyncio.sleep(fault_at)
    await asyncio.to_thread(nemesis_action, history)
    await asyncio.gather(*load)
    end_ns = time.monotonic_ns()
    deadline = time.monotonic() + settle
    final = await snapshot(info)
    while not _settled(final) and time.monotonic() < deadline:
        await asyncio.sleep(1.0)
        final = await snapshot(info)
    ctx = CheckContext(baseline=baseline, run_start_ns=start_ns, run_end_ns=end_ns)
    results = run_checks(None, history.lines, final, ctx)
    history.dump(out / "history.jsonl")
    (out / "final_state.json").write_text(json.dumps(final, default=str))
    (out / "results.json").write_text(json.dumps([r.to_dict() for r in results], indent=2, default=str))
    return results, history, final


def summary(results: list[Any], history: History) -> str:
    counts: dict[str, int] = {}
    for line in history.lines:
        if line.get("process") != "nemesis":
            counts[line["type"]] = counts.get(line["type"], 0) + 1
    verdicts = ", ".join(f"{r.name}={r.valid}" for r in results)
    bad = [f"{r.name}: {r.message} {r.errors[:2]}" for r in results if r.valid is not True]
    return f"ops {counts}; {verdicts}" + ("".join("\n  " + b for b in bad) if bad else "")
