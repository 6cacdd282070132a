"""Where the synthetic generator's history lines and rows go: lists, or a run folder.

The generator (``synthetic.py``) is one piece of code for both, so a run written to
disk is, line for line and row for row, the run ``synthetic_run`` returns in memory.
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any

import orjson

from ._state import StateWriter, TableWriter

if TYPE_CHECKING:
    from .synthetic import SyntheticRun

__all__ = ["FolderSink", "MemorySink", "Sink"]

#: the tables of a snapshot, in the order the in-memory state dict lists them
TABLES = ("accounts", "transfers", "entries", "idempotency", "outbox", "stream", "dead_letters",
          "processed_events", "projections", "audit")


def _accounts(balance: dict[str, int], issuance: str, initial: int, accounts: int,
              negative: bool = False) -> list[dict[str, Any]]:
    rows = [{"id": issuance, "merchant_id": "m1", "currency": "EUR",
             "balance": -initial * accounts, "non_negative": False, "kind": "issuance"}]
    rows += [{"id": a, "merchant_id": "m1", "currency": "EUR", "balance": b,
              "non_negative": True, "kind": "customer"} for a, b in balance.items()]
    if negative and len(rows) > 3:
        rows[3]["balance"] = -7
    return rows


class Sink:
    """Receives the generator's output."""

    def op(self, line: dict[str, Any]) -> None:
        raise NotImplementedError

    def row(self, table: str, row: dict[str, Any]) -> None:
        raise NotImplementedError

    def mark(self, run: SyntheticRun | None, kind: str, key: str, line: int) -> None:
        """Remember a key for the tests' handles (memory only)."""

    def baseline_done(self, balance: dict[str, int], issuance: str, initial: int,
                      accounts: int) -> None:
        """The seed transfers are posted: what exists now is the baseline."""

    def finish(self, balance: dict[str, int], issuance: str, initial: int, accounts: int, *,
               negative: bool, drift: bool) -> None:
        raise NotImplementedError


class MemorySink(Sink):
    """Collects the run as the lists and dicts of the in-memory API."""

    def __init__(self) -> None:
        self.history: list[dict[str, Any]] = []
        self.state: dict[str, Any] = {t: [] for t in TABLES}

    def op(self, line: dict[str, Any]) -> None:
        self.history.append(line)

    def row(self, table: str, row: dict[str, Any]) -> None:
        self.state[table].append(row)

    def mark(self, run: SyntheticRun | None, kind: str, key: str, line: int) -> None:
        if run is None:
            return
        {"ok": run.ok_keys, "failed": run.failed_keys, "info_applied": run.info_applied_keys,
         "info_lost": run.info_lost_keys}[kind].append(key)
        run.line_of_key[key] = line

    def finish(self, balance: dict[str, int], issuance: str, initial: int, accounts: int, *,
               negative: bool, drift: bool) -> None:
        rows = _accounts(balance, issuance, initial, accounts, negative)
        self.state["accounts"] = rows
        self.state["projections"] = [{"account_id": a["id"], "balance": a["balance"]} for a in rows]
        if drift:
            self.state["projections"][1]["balance"] += 100
        self.state["external_inflow"] = {"EUR": initial * accounts}


def _scenario(n_ops: int, step_ns: int, seed: int) -> str:
    total = max(n_ops * step_ns / 1e9, 3.0)
    return (
        f"name: synthetic-{n_ops}\n"
        f"description: a synthetic run of {n_ops} operations (faultline.checks.synthetic)\n"
        f"seed: {seed}\n"
        f"load: {{duration: {total:.3f}s}}\n"
        f"faults: [{{at: {total / 3:.3f}s, for: {total / 3:.3f}s, hop: api->postgres, "
        f"toxic: latency, latency: 100}}]\n"
        "slos:\n"
        "  - {phase: before, p50_ms: 50, p99_ms: 100, error_rate: 0.1}\n"
        "  - {phase: during, p99_ms: 500, throughput: 10}\n"
        "  - {phase: after, error_rate: 0.1, recover_within: 60s}\n"
    )


class FolderSink(Sink):
    """Streams the run into a run folder (``RunFolder``'s names): scenario, history,
    the baseline snapshot (the seed transfers) and the final snapshot."""

    def __init__(self, path: Path, *, n_ops: int, step_ns: int, seed: int) -> None:
        from faultline.drill._store import RunFolder

        self.folder = RunFolder(path)
        self.folder.path.mkdir(parents=True, exist_ok=True)
        self.folder.scenario.write_text(_scenario(n_ops, step_ns, seed), encoding="utf-8")
        self._history: IO[bytes] = open(self.folder.history, "wb", buffering=1 << 20)  # noqa: SIM115
        self._final = StateWriter(self.folder.final_state)
        self._tables: dict[str, TableWriter] = {
            t: self._final.open_table(t) for t in TABLES if t not in ("accounts", "projections")}
        self._seed_rows: dict[str, list[dict[str, Any]]] | None = {t: [] for t in TABLES}
        self._dumps = orjson.dumps
        self._newline = orjson.OPT_APPEND_NEWLINE

    def op(self, line: dict[str, Any]) -> None:
        self._history.write(self._dumps(line, option=self._newline))

    def row(self, table: str, row: dict[str, Any]) -> None:
        if self._seed_rows is not None:
            self._seed_rows[table].append(row)
        self._tables[table].write(row)

    def baseline_done(self, balance: dict[str, int], issuance: str, initial: int,
                      accounts: int) -> None:
        seeds = self._seed_rows or {}
        self._seed_rows = None
        rows = _accounts(balance, issuance, initial, accounts)
        with StateWriter(self.folder.baseline_state) as base:
            base.table("accounts", rows)
            for t in TABLES:
                if t not in ("accounts", "projections"):
                    base.table(t, seeds.get(t, []))
            base.table("projections", ({"account_id": a["id"], "balance": a["balance"]} for a in rows))
            base.meta("external_inflow", {"EUR": initial * accounts})

    def finish(self, balance: dict[str, int], issuance: str, initial: int, accounts: int, *,
               negative: bool, drift: bool) -> None:
        rows = _accounts(balance, issuance, initial, accounts, negative)
        self._final.table("accounts", rows)
        projections = [{"account_id": a["id"], "balance": a["balance"]} for a in rows]
        if drift:
            projections[1]["balance"] += 100
        self._final.table("projections", projections)
        self._final.meta("external_inflow", {"EUR": initial * accounts})

    def __enter__(self) -> FolderSink:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._history.close()
        self._final.__exit__(exc_type, exc, tb)
