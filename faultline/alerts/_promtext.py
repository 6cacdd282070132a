"""A small parser for the Prometheus text exposition format (version 0.0.4).

Enough for what services expose with ``prometheus_client``: comments, ``# HELP``,
``# TYPE``, samples with escaped label values, ``NaN``/``+Inf``/``-Inf``, optional
timestamps. Malformed lines are skipped, not fatal: a scrape must not kill a drill.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["Sample", "parse_prometheus_text"]


@dataclass(frozen=True, slots=True)
class Sample:
    """One sample: metric ``name``, ``labels`` (sorted pairs) and ``value``."""

    name: str
    labels: tuple[tuple[str, str], ...]
    value: float
    timestamp_ms: int | None = None

    @property
    def label_dict(self) -> dict[str, str]:
        return dict(self.labels)


_ESCAPES = {"\\": "\\", '"': '"', "n": "\n"}


def _parse_labels(text: str, i: int) -> tuple[dict[str, str], int]:
    """Parse ``{a="x",b="y"}`` starting at ``text[i] == "{"``; return labels, index after ``}``."""
    labels: dict[str, str] = {}
    i += 1
    n = len(text)
    while True:
        while i < n and text[i] in " \t,":
            i += 1
        if i >= n:
            raise ValueError("unterminated label set")
        if text[i] == "}":
            return labels, i + 1
        eq = text.index("=", i)
        key = text[i:eq].strip()
        i = eq + 1
        while text[i] in " \t":
            i += 1
        if text[i] != '"':
            raise ValueError("label value must be quoted")
        i += 1
        buf: list[str] = []
        while True:
            c = text[i]
            if c == "\\":
                buf.append(_ESCAPES.get(text[i + 1], "\\" + text[i + 1]))
                i += 2
            elif c == '"':
                i += 1
                break
            else:
                buf.append(c)
                i += 1
        labels[key] = "".join(buf)


def _float(text: str) -> float:
    low = text.lower()
    if low in ("nan",):
        return math.nan
    if low in ("+inf", "inf"):
        return math.inf
    if low == "-inf":
        return -math.inf
    return float(text)


def parse_prometheus_text(text: str) -> list[Sample]:
    """Every sample in ``text``, in order; unparseable lines are skipped."""
    samples: list[Sample] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            brace = line.find("{")
            space = line.find(" ")
            if brace != -1 and (space == -1 or brace < space):
                name = line[:brace]
                labels, end = _parse_labels(line, brace)
                rest = line[end:].split()
            else:
                parts = line.split()
                name, labels, rest = parts[0], {}, parts[1:]
            if not rest:
                continue
            value = _float(rest[0])
            ts = int(rest[1]) if len(rest) > 1 else None
        except (ValueError, IndexError):
            continue
        samples.append(Sample(name.strip(), tuple(sorted(labels.items())), value, ts))
    return samples
