"""Inline SVG line charts, hand-made: no JavaScript, no CDN, readable offline."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape

__all__ = ["Line", "Mark", "Shade", "line_chart"]

_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b")


@dataclass(slots=True)
class Line:
    """A series of ``(x, y)`` points; ``None`` y values break the line."""

    label: str
    points: list[tuple[float, float | None]]
    color: str | None = None
    dashed: bool = False


@dataclass(slots=True)
class Shade:
    """A shaded x range (a fault window)."""

    x0: float
    x1: float
    label: str
    color: str = "#f4a582"


@dataclass(slots=True)
class Mark:
    """A vertical marker at ``x`` (a breaker state change, an alert)."""

    x: float
    label: str
    color: str = "#555555"


@dataclass(slots=True)
class _Frame:
    width: int
    height: int
    left: int = 60
    right: int = 20
    top: int = 30
    bottom: int = 40
    x_min: float = 0.0
    x_max: float = 1.0
    y_min: float = 0.0
    y_max: float = 1.0
    parts: list[str] = field(default_factory=list)

    def x(self, v: float) -> float:
        span = (self.x_max - self.x_min) or 1.0
        return self.left + (v - self.x_min) / span * (self.width - self.left - self.right)

    def y(self, v: float) -> float:
        span = (self.y_max - self.y_min) or 1.0
        return self.height - self.bottom - (v - self.y_min) / span * (
            self.height - self.top - self.bottom
        )


def _nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step) * step
    ticks = []
    v = first
    while v <= hi + step * 1e-9:
        ticks.append(round(v, 10))
        v += step
    return ticks


def _fmt(v: float) -> str:
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:g}"


def line_chart(
    title: str,
    lines: Sequence[Line],
    *,
    y_label: str = "",
    x_label: str = "seconds since start",
    shades: Sequence[Shade] = (),
    marks: Sequence[Mark] = (),
    width: int = 860,
    height: int = 260,
) -> str:
    """An ``<svg>`` element: the lines, shaded windows, vertical marks, axes, legend."""
    xs = [x for ln in lines for x, _ in ln.points]
    ys = [y for ln in lines for _, y in ln.points if y is not None and math.isfinite(y)]
    xs += [s.x0 for s in shades] + [s.x1 for s in shades] + [m.x for m in marks]
    f = _Frame(width, height)
    f.x_min, f.x_max = (min(xs), max(xs)) if xs else (0.0, 1.0)
    if f.x_max <= f.x_min:
        f.x_max = f.x_min + 1.0
    f.y_min = 0.0
    f.y_max = max(ys) * 1.1 if ys and max(ys) > 0 else 1.0
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}" '
        'font-family="sans-serif" font-size="11">',
        f"<title>{escape(title)}</title>",
        f'<text x="{f.left}" y="16" font-size="13" font-weight="bold">{escape(title)}</text>',
    ]
    plot_top, plot_bottom = f.top, height - f.bottom
    for s in shades:
        x0, x1 = f.x(s.x0), f.x(s.x1)
        out.append(
            f'<rect x="{x0:.1f}" y="{plot_top}" width="{max(x1 - x0, 1):.1f}" '
            f'height="{plot_bottom - plot_top}" fill="{s.color}" fill-opacity="0.25">'
            f"<title>{escape(s.label)}</title></rect>"
        )
        out.append(
            f'<text x="{x0 + 2:.1f}" y="{plot_top + 10}" fill="#a0522d">{escape(s.label)}</text>'
        )
    for t in _nice_ticks(f.y_min, f.y_max):
        y = f.y(t)
        out.append(
            f'<line x1="{f.left}" x2="{width - f.right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e5e5e5"/>'
        )
        out.append(f'<text x="{f.left - 4}" y="{y + 4:.1f}" text-anchor="end">{_fmt(t)}</text>')
    for t in _nice_ticks(f.x_min, f.x_max, 8):
        x = f.x(t)
        out.append(
            f'<text x="{x:.1f}" y="{plot_bottom + 14}" text-anchor="middle">{_fmt(t)}</text>'
        )
    out.append(
        f'<line x1="{f.left}" x2="{f.left}" y1="{plot_top}" y2="{plot_bottom}" stroke="#333"/>'
        f'<line x1="{f.left}" x2="{width - f.right}" y1="{plot_bottom}" y2="{plot_bottom}" stroke="#333"/>'
    )
    out.append(
        f'<text x="{width / 2:.0f}" y="{height - 6}" text-anchor="middle">{escape(x_label)}</text>'
    )
    if y_label:
        out.append(
            f'<text x="12" y="{(plot_top + plot_bottom) / 2:.0f}" text-anchor="middle" '
            f'transform="rotate(-90 12 {(plot_top + plot_bottom) / 2:.0f})">{escape(y_label)}</text>'
        )
    for i, ln in enumerate(lines):
        color = ln.color or _COLORS[i % len(_COLORS)]
        segments: list[list[str]] = [[]]
        for px, py in ln.points:
            if py is None or not math.isfinite(py):
                if segments[-1]:
                    segments.append([])
                continue
            segments[-1].append(f"{f.x(px):.1f},{f.y(py):.1f}")
        dash = ' stroke-dasharray="5,3"' if ln.dashed else ""
        for seg in segments:
            if len(seg) == 1:
                cx, cy = seg[0].split(",")
                out.append(f'<circle cx="{cx}" cy="{cy}" r="2" fill="{color}"/>')
            elif seg:
                out.append(
                    f'<polyline fill="none" stroke="{color}" stroke-width="1.5"{dash} '
                    f'points="{" ".join(seg)}"/>'
                )
        lx = width - f.right - 150
        ly = f.top + 12 + i * 14
        out.append(
            f'<line x1="{lx}" x2="{lx + 18}" y1="{ly - 4}" y2="{ly - 4}" stroke="{color}" '
            f'stroke-width="2"{dash}/><text x="{lx + 22}" y="{ly}">{escape(ln.label)}</text>'
        )
    for m in marks:
        x = f.x(m.x)
        out.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{plot_top}" y2="{plot_bottom}" stroke="{m.color}" '
            f'stroke-dasharray="2,2"><title>{escape(m.label)}</title></line>'
            f'<text x="{x + 2:.1f}" y="{plot_bottom - 4}" fill="{m.color}" font-size="9">'
            f"{escape(m.label)}</text>"
        )
    out.append("</svg>")
    return "\n".join(out)
