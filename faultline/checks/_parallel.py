"""Reading a big stored run on two cores: the history, the audit log and the ledger
entries in helper processes, the rest of the snapshot here, at the same time.

Decoding is most of a check's time, and the files are independent: forked helpers
build the history's index, read and rehash the audit chain and read the entries,
while this process reads the snapshot's other tables. Each result comes back through a pickle file
(numpy arrays go to it without a copy), so no process holds one twice. Anything that
goes wrong in a helper is left to the ordinary path: the checkers then read that part
themselves (and fail, if they must, the same way).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import pickle
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ._audit import audit_chain
from ._history import history_index
from ._result import CheckContext
from ._snapshot import _SPEC, StateSource, table, table_key
from ._source import FileRecords

__all__ = ["PARALLEL_MIN_BYTES", "prefetch"]

#: a history smaller than this is read in this process (a fork costs ~50 ms)
PARALLEL_MIN_BYTES = 32 << 20


def _helper(build: Callable[[], Any], out: str) -> None:
    try:
        value = build()
        with open(out, "wb") as fh:
            pickle.dump(value, fh, protocol=5)
    except BaseException:  # the parent reads it in-process, and fails there if it must
        os._exit(1)
    os._exit(0)


def prefetch(history: Any, state: StateSource | None, ctx: CheckContext) -> None:
    """Fill ``ctx.cache`` with the history index, the audit chain and the snapshot's
    columns, read on two cores. Does nothing for a small or in-memory run."""
    if (state is None or not isinstance(history, FileRecords) or "history_index" in ctx.cache
            or history.path.stat().st_size < PARALLEL_MIN_BYTES):
        return
    try:
        fork = multiprocessing.get_context("fork")
    except ValueError:
        return
    jobs: dict[str, tuple[Any, Callable[[], Any]]] = {
        "history_index": (history, lambda: history_index(history, CheckContext()))}
    if "audit" in state.tables:
        jobs["audit_chain"] = (state, lambda: audit_chain(state, CheckContext()))
    if "entries" in state.tables:  # the biggest table: two rows per transfer
        jobs[table_key(state, "entries")] = (state, lambda: table(state, CheckContext(), "entries"))
    with tempfile.TemporaryDirectory(prefix="faultline-check-") as tmp:
        helpers = []
        for key, (_, build) in jobs.items():
            out = str(Path(tmp) / f"{key}.pickle")
            helper = fork.Process(target=_helper, args=(build, out), daemon=True)
            helper.start()
            helpers.append((key, out, helper))
        try:
            for name in _SPEC:
                if name in state.tables and table_key(state, name) not in jobs:
                    with contextlib.suppress(Exception):  # the checker fails on it itself
                        table(state, ctx, name)
        except BaseException:  # interrupted: stop the helpers, do not wait for them
            for _, _, helper in helpers:
                helper.terminate()
                helper.join()
            raise
        for key, out, helper in helpers:
            helper.join()
            if helper.exitcode == 0:
                with open(out, "rb") as fh:
                    ctx.cache[key] = (jobs[key][0], pickle.load(fh))
