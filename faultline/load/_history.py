"""Merge the history files of one drill into one history (docs/contracts.md §6)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = ["merge_histories", "read_jsonl", "write_jsonl"]


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Every complete JSON line of ``path`` (a torn last line of a killed writer is skipped)."""
    out: list[dict[str, Any]] = []
    with open(path, encoding="utf-8") as fh:
        for raw in fh:
            raw = raw.strip()
            if not raw:
                continue
            try:
                out.append(json.loads(raw))
            except ValueError:
                continue
    return out


def merge_histories(sources: Iterable[Path | list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """All lines of all sources, ordered by monotonic ``time`` (stable within a source),
    re-indexed from 0. Sources are files or lists of lines (e.g. the nemesis events)."""
    tagged: list[tuple[int, int, int, dict[str, Any]]] = []
    for n, source in enumerate(sources):
        lines = read_jsonl(source) if isinstance(source, Path) else source
        for i, line in enumerate(lines):
            tagged.append((int(line.get("time") or 0), n, i, line))
    tagged.sort(key=lambda t: (t[0], t[1], t[2]))
    merged = []
    for index, (_, _, _, line) in enumerate(tagged):
        line = dict(line)
        line["index"] = index
        merged.append(line)
    return merged


def write_jsonl(path: Path, lines: Iterable[dict[str, Any]]) -> None:
    """One JSON object per line."""
    with open(path, "w", encoding="utf-8") as fh:
        for line in lines:
            fh.write(json.dumps(line, separators=(",", ":"), default=str) + "\n")
