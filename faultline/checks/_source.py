"""Where a run's records come from: lists and dicts in memory, or JSON-lines files.

Checkers never hold a record source's rows. They ask for the *fields* they read, chunk
by chunk (raw Python values, :data:`MISSING` where a row lacks one), shrink each chunk
to columns, and later ask for the few whole rows their error examples show
(:meth:`RecordSource.rows_at`). A file is decoded with ``msgspec`` into a struct of just
the fields asked for; every other field of a line is skipped without being built.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from operator import attrgetter, itemgetter, methodcaller
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import orjson

from ._columns import MISSING, Codes

__all__ = ["BLOCK_BYTES", "RAW", "Chunk", "FileRecords", "ListRecords", "RecordSource"]

#: bytes decoded at once from a file (a chunk's columns are a few times this)
BLOCK_BYTES = 8 << 20
#: fields whose value is kept as raw JSON text (``msgspec.Raw``), never built
RAW = frozenset({"body", "value", "response_body"})

_MISSING_CODE = hash(MISSING)


class Chunk:
    """Consecutive rows, read field by field: ``chunk["f"]`` (a list, kept),
    ``chunk.iter("f")``, ``chunk.codes("f")``, ``chunk.at("f", i)``, ``chunk.tuples(fs)``.

    Nothing is extracted from the rows until asked, so a field read for a few rows (a
    body, a nemesis line's value) costs those rows only.
    """

    __slots__ = ("_getters", "_lists", "n", "raw", "rows")

    def __init__(self, rows: Sequence[Any], getters: dict[str, Any], struct: bool) -> None:
        self.rows = rows
        self.n = len(rows)
        self._getters = getters
        self._lists: dict[str, list[Any]] = {}
        #: decoded from a file: the fields of ``RAW`` are raw JSON text (``msgspec.Raw``)
        self.raw = struct

    def __getitem__(self, name: str) -> list[Any]:
        values = self._lists.get(name)
        if values is None:
            values = self._lists[name] = list(map(self._getters[name], self.rows))
        return values

    def iter(self, name: str) -> Iterator[Any]:
        """The field's values, lazily."""
        return map(self._getters[name], self.rows)

    def at(self, name: str, i: int) -> Any:
        """The field's value in row ``i``."""
        return self._getters[name](self.rows[i])

    def pick(self, name: str, positions: list[int]) -> list[Any]:
        """The field's values in these rows."""
        return list(map(self._getters[name], map(self.rows.__getitem__, positions)))

    def codes(self, name: str, *, required: bool = False) -> Codes:
        """The field's codes; ``required``: ``KeyError(name)`` when a row lacks it."""
        codes = np.fromiter(map(hash, self.iter(name)), np.int64, count=self.n)
        if required and self.n and bool((codes == _MISSING_CODE).any()):
            raise KeyError(name)
        return codes

    def tuples(self, names: Sequence[str]) -> Iterator[tuple[Any, ...]]:
        """Rows as tuples of these fields (a dict row without one raises ``KeyError``)."""
        return map((attrgetter if self.raw else itemgetter)(*names), self.rows)


class RecordSource:
    """Rows of one table or history; ``len`` is their number (read once, then known)."""

    name: str

    def chunks(self, fields: Sequence[str]) -> Iterator[Chunk]:
        """Successive chunks of ``{field: [value per row]}``, in row order.

        A row without a field gives :data:`MISSING`, or ``None`` for a field asked
        for as ``"name?"`` (the chunk's key is then ``name``).
        """
        raise NotImplementedError

    def rows_at(self, positions: Iterable[int]) -> dict[int, dict[str, Any]]:
        """The whole rows at these 0-based positions."""
        raise NotImplementedError

    def known_length(self) -> int | None:
        """The number of rows when it is known without reading them."""
        return None

    def __iter__(self) -> Iterator[dict[str, Any]]:
        """Every row as a dict, streaming (for code that walks a history line by line;
        the checkers read columns instead)."""
        raise NotImplementedError

    def __len__(self) -> int:
        raise NotImplementedError


class ListRecords(RecordSource):
    """A list of dicts (the in-memory API); chunks are views of the list."""

    CHUNK_ROWS = 1 << 20

    def __init__(self, rows: Sequence[Mapping[str, Any]], name: str = "") -> None:
        self.rows = rows
        self.name = name

    def chunks(self, fields: Sequence[str]) -> Iterator[Chunk]:
        rows = self.rows
        getters = {name: methodcaller("get", name, absent) for name, absent in map(_spec, fields)}
        for lo in range(0, len(rows), self.CHUNK_ROWS):
            yield Chunk(rows[lo : lo + self.CHUNK_ROWS], getters, struct=False)

    def rows_at(self, positions: Iterable[int]) -> dict[int, dict[str, Any]]:
        return {p: dict(self.rows[p]) for p in positions}

    def known_length(self) -> int | None:
        return len(self.rows)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.rows)  # type: ignore[arg-type]

    def __len__(self) -> int:
        return len(self.rows)


def _spec(field: str) -> tuple[str, Any]:
    return (field[:-1], None) if field.endswith("?") else (field, MISSING)


def _struct(fields: Sequence[str]) -> type[msgspec.Struct]:
    spec = [(name, msgspec.Raw if name in RAW else Any, absent) for name, absent in map(_spec, fields)]
    return msgspec.defstruct("Row", spec, kw_only=True)


class FileRecords(RecordSource):
    """A JSON-lines file, one object a line; blank lines are skipped.

    A line that is not JSON fails the read with its line number, except a torn last
    line (no newline after it: the writer was killed), which is skipped.
    """

    def __init__(self, path: str | os.PathLike[str], name: str = "") -> None:
        self.path = Path(path)
        self.name = name or self.path.stem
        self._len: int | None = None

    def _blocks(self) -> Iterator[tuple[int, bytes | memoryview]]:
        """(byte offset, whole lines) pieces of the file, without copying a block: the
        one line that straddles two blocks is a piece of its own."""
        offset = 0
        rest = b""
        with open(self.path, "rb") as fh:
            while True:
                block = fh.read(BLOCK_BYTES)
                if not block:
                    break
                start = 0
                if rest:
                    nl = block.find(b"\n")
                    if nl < 0:
                        rest += block
                        continue
                    yield offset, rest + block[: nl + 1]
                    offset += len(rest) + nl + 1
                    start = nl + 1
                cut = block.rfind(b"\n") + 1
                if cut > start:
                    yield offset, memoryview(block)[start:cut]
                    offset += cut - start
                rest = block[max(cut, start):]
        if rest.strip():
            try:
                orjson.loads(rest)
            except orjson.JSONDecodeError:
                return  # a torn last line
            yield offset, rest

    def chunks(self, fields: Sequence[str]) -> Iterator[Chunk]:
        decoder = msgspec.json.Decoder(_struct(fields))
        getters = {name: attrgetter(name) for name, _ in map(_spec, fields)}
        total = 0
        for offset, data in self._blocks():
            try:
                rows = decoder.decode_lines(data)
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                raise ValueError(f"{self.path}: {self._bad_line(data, offset)}: {exc}") from None
            total += len(rows)
            yield Chunk(rows, getters, struct=True)
        self._len = total

    def _bad_line(self, data: bytes | memoryview, offset: int) -> str:
        with open(self.path, "rb") as fh:
            first_line = fh.read(offset).count(b"\n")
        for i, line in enumerate(bytes(data).split(b"\n")):
            if not line.strip():
                continue
            try:
                orjson.loads(line)
            except orjson.JSONDecodeError:
                return f"line {first_line + i + 1} is not JSON"
        return f"a line from {first_line + 1} on is not a JSON object"

    def rows_at(self, positions: Iterable[int]) -> dict[int, dict[str, Any]]:
        wanted = sorted(set(positions))
        out: dict[int, dict[str, Any]] = {}
        if not wanted:
            return out
        k, pos = 0, 0
        with open(self.path, "rb") as fh:
            for line in fh:
                if not line.strip():
                    continue
                if pos == wanted[k]:
                    out[pos] = orjson.loads(line)
                    k += 1
                    if k == len(wanted):
                        break
                pos += 1
        return out

    def known_length(self) -> int | None:
        return self._len

    def __iter__(self) -> Iterator[dict[str, Any]]:
        loads = orjson.loads
        for _, data in self._blocks():
            for line in bytes(data).splitlines():
                if line.strip():
                    yield loads(line)

    def __len__(self) -> int:
        if self._len is None:
            n = 0
            for _, data in self._blocks():
                n += sum(1 for line in bytes(data).split(b"\n") if line.strip())
            self._len = n
        return self._len
