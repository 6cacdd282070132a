"""Reading a big stored run on two cores: the history in a helper process, the snapshot
here, at the same time.

Decoding is most of a check's time, and a history and its snapshot are independent
files: a forked helper builds the history's index while this process reads the
snapshot's tables and rehashes the audit chain. The index comes back through a pickle
file (numpy arrays go to it without a copy), so neither process holds it twice.
Anything that goes wrong in the helper is left to the ordinary path: the checkers then
build the index themselves (and fail, if they must, the same way).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

from ._audit import audit_chain
from ._history import history_index
from ._result import CheckContext
from ._snapshot import _SPEC, StateSource, table
from ._source import FileRecords

__all__ = ["PARALLEL_MIN_BYTES", "prefetch"]

#: a history smaller than this is read in this process (a fork costs ~50 ms)
PARALLEL_MIN_BYTES = 32 << 20


def _build(history: FileRecords, out: str) -> None:
    try:
        ix = history_index(history, CheckContext())
        with open(out, "wb") as fh:
            pickle.dump(ix, fh, protocol=5)
    except BaseException:  # the parent rebuilds it in-process, and fails there if it must
        os._exit(1)
    os._exit(0)


def prefetch(history: Any, state: StateSource | None, ctx: CheckContext) -> None:
    """Fill ``ctx.cache`` with the history index and the snapshot's columns, reading
    the two on two cores. Does nothing for a small or in-memory run."""
    if (state is None or not isinstance(history, FileRecords) or "history_index" in ctx.cache
            or history.path.stat().st_size < PARALLEL_MIN_BYTES):
        return
    try:
        fork = multiprocessing.get_context("fork")
    except ValueError:
        return
    with tempfile.TemporaryDirectory(prefix="faultline-check-") as tmp:
        out = str(Path(tmp) / "history-index.pickle")
        helper = fork.Process(target=_build, args=(history, out), daemon=True)
        helper.start()
        try:
            for name in _SPEC:
                if name in state.tables:
                    with contextlib.suppress(Exception):  # the checker fails on it itself
                        table(state, ctx, name)
            if "audit" in state.tables:
                with contextlib.suppress(Exception):
                    audit_chain(state, ctx)
        finally:
            helper.join()
        if helper.exitcode == 0:
            with open(out, "rb") as fh:
                ctx.cache["history_index"] = (history, pickle.load(fh))
