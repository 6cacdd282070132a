"""A snapshot on disk: a directory of one JSON-lines file per table, plus ``meta.json``.

::

    final_state/                     (RunFolder.FINAL; the baseline: RunFolder.BASELINE)
      accounts.jsonl                 one row a line, the fields of docs/contracts.md §5
      transfers.jsonl  entries.jsonl  idempotency.jsonl  outbox.jsonl  stream.jsonl
      dead_letters.jsonl  processed_events.jsonl  projections.jsonl  audit.jsonl
      meta.json                      {"format": 1, "tables": {name: {"rows": n}},
                                      "values": {"external_inflow": {...}}}

``meta.json`` is written last, by :class:`StateWriter` on a clean exit: it is the
manifest of the tables written (a table it lists with 0 rows is empty; a table it does
not list is *missing*, and the checkers that need it say ``unknown``) and the mark of a
complete snapshot (a directory without it is an interrupted write, and is refused).

This module is the one place that knows these names. Rows stream through: neither the
writer nor :func:`open_state` holds a table in memory. The former single-file form
(``final_state.json``) is still read, whole.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import orjson

from ._snapshot import StateSource
from ._source import FileRecords

__all__ = ["STATE_FORMAT", "StateError", "StateWriter", "TableWriter", "open_state", "read_state"]

STATE_FORMAT = 1
_META = "meta.json"
_SUFFIX = ".jsonl"
_BUFFER = 1 << 20


class StateError(Exception):
    """A snapshot that cannot be read (missing, interrupted, or of another format)."""


def _dumps(row: Mapping[str, Any]) -> bytes:
    return orjson.dumps(row, default=str, option=orjson.OPT_APPEND_NEWLINE)


class TableWriter:
    """Rows of one table, written as they come (``write``/``write_many``)."""

    def __init__(self, path: Path) -> None:
        self._fh: IO[bytes] | None = open(path, "wb", buffering=_BUFFER)  # noqa: SIM115
        self.rows = 0

    def write(self, row: Mapping[str, Any]) -> None:
        """Append one row."""
        assert self._fh is not None, "table already closed"
        self._fh.write(_dumps(row))
        self.rows += 1

    def write_many(self, rows: Iterable[Mapping[str, Any]]) -> int:
        """Append every row of an iterable (consumed lazily); returns how many."""
        assert self._fh is not None, "table already closed"
        write, n = self._fh.write, 0
        for row in rows:
            write(_dumps(row))
            n += 1
        self.rows += n
        return n

    def close(self) -> None:
        """Flush and close the table's file (the writer's close does it too)."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def __enter__(self) -> TableWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class StateWriter:
    """Write a snapshot directory, streaming::

        with StateWriter(folder.final_state) as w:
            w.table("accounts", rows)                 # any iterable of dicts
            with w.open_table("entries") as entries:  # or row by row, several at once
                entries.write(row)
            w.meta("external_inflow", {"EUR": 100})

    The directory is created (an existing snapshot in it is replaced). ``meta.json``,
    the manifest, is written when the ``with`` block ends without an exception.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._tables: dict[str, TableWriter] = {}
        self._values: dict[str, Any] = {}
        self.path.mkdir(parents=True, exist_ok=True)
        stale = self.path / _META
        if stale.exists():
            stale.unlink()
        for old in self.path.glob("*" + _SUFFIX):
            old.unlink()

    def open_table(self, name: str) -> TableWriter:
        """A :class:`TableWriter` for ``name`` (also a context manager)."""
        if not name.isidentifier() or name in self._tables:
            raise ValueError(f"table name {name!r} is not new and plain")
        writer = TableWriter(self.path / (name + _SUFFIX))
        self._tables[name] = writer
        return writer

    def table(self, name: str, rows: Iterable[Mapping[str, Any]]) -> int:
        """Write a whole table from an iterable of rows; returns the row count."""
        with self.open_table(name) as writer:
            return writer.write_many(rows)

    def meta(self, key: str, value: Any) -> None:
        """A non-table value of the snapshot (``external_inflow``)."""
        self._values[key] = value

    def close(self) -> None:
        """Close every table and write the manifest."""
        for writer in self._tables.values():
            writer.close()
        manifest = {
            "format": STATE_FORMAT,
            "tables": {name: {"rows": w.rows} for name, w in self._tables.items()},
            "values": self._values,
        }
        tmp = self.path / (_META + ".tmp")
        tmp.write_bytes(orjson.dumps(manifest, default=str, option=orjson.OPT_INDENT_2))
        tmp.replace(self.path / _META)

    def __enter__(self) -> StateWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            self.close()
        else:
            for writer in self._tables.values():
                writer.close()


def _legacy(path: Path) -> Path | None:
    """The single-file snapshot that a stored run of before kept beside the directory."""
    legacy = path.with_suffix(".json")
    return legacy if legacy.is_file() else None


def _manifest(path: Path) -> dict[str, Any]:
    meta = path / _META
    if not meta.is_file():
        raise StateError(f"{path}: no {_META}: the snapshot was not written to the end")
    data = orjson.loads(meta.read_bytes())
    if data.get("format") != STATE_FORMAT:
        raise StateError(f"{meta}: snapshot format {data.get('format')!r}, not {STATE_FORMAT}")
    return dict(data)


def open_state(path: str | os.PathLike[str]) -> StateSource:
    """A snapshot for the checkers, streaming its tables from disk.

    ``path`` is a snapshot directory, or a single-file snapshot (``*.json``, or a
    directory path whose ``.json`` sibling exists: a stored run of before).
    """
    p = Path(path)
    if p.is_file():
        return StateSource.from_dict(json.loads(p.read_bytes()))
    if not p.is_dir():
        legacy = _legacy(p)
        if legacy is None:
            raise StateError(f"{p}: no snapshot here")
        return StateSource.from_dict(json.loads(legacy.read_bytes()))
    manifest = _manifest(p)
    tables = {name: FileRecords(p / (name + _SUFFIX), name) for name in manifest["tables"]}
    for name, info in manifest["tables"].items():
        tables[name]._len = int(info["rows"])
    return StateSource(tables, manifest.get("values", {}))


def read_state(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A snapshot as the in-memory dict of contracts §5 (for small states and tests)."""
    source = open_state(path)
    state: dict[str, Any] = {}
    for name, records in source.tables.items():
        if isinstance(records, FileRecords):
            with open(records.path, "rb") as fh:
                state[name] = [orjson.loads(line) for line in fh if line.strip()]
        else:
            state[name] = list(records.rows)  # type: ignore[attr-defined]
    state.update(source.meta)
    return state
