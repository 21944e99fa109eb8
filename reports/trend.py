"""The HTML report's trend section: inline SVG drawn from RunPoints (no script, no font, no external resource).

Two charts share the x axis, one column per run (oldest left, this run right):
- open findings by severity, as stacked bars;
- the share of scanned account-regions with logging on (and, when the catalog has the delivery rule, delivering),
  as lines in percent.
Colours come from CSS classes of the page's own stylesheet; every text is escaped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from markupsafe import Markup, escape

from audit_bedrock.constants import SEVERITIES
from audit_bedrock.reports.history import RunPoint

WIDTH, BAR_H, LINE_H = 720, 180, 140
LEFT, RIGHT, TOP, BOTTOM = 44, 12, 12, 34


def _x(i: int, n: int) -> float:
    step = (WIDTH - LEFT - RIGHT) / max(n, 1)
    return LEFT + step * i + step / 2


def _nice_max(value: int) -> int:
    for m in (5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10000):
        if value <= m:
            return m
    return value


def _labels(points: Sequence[RunPoint], height: int) -> list[str]:
    out = []
    n = len(points)
    every = max(1, n // 8)
    for i, p in enumerate(points):
        if i % every and i != n - 1:
            continue
        label = "this run" if i == n - 1 else p.label
        out.append(f'<text class="tick" x="{_x(i, n):.1f}" y="{height - BOTTOM + 16}" text-anchor="middle">'
                   f"{escape(label)}</text>")
    return out


def severity_chart(points: Sequence[RunPoint]) -> Markup:
    """Stacked bars of open findings by severity, one bar per run."""
    n = len(points)
    top = _nice_max(max((p.total for p in points), default=0))
    plot = BAR_H - TOP - BOTTOM
    width = max(4.0, min(36.0, (WIDTH - LEFT - RIGHT) / max(n, 1) * 0.6))
    parts = [f'<svg class="trend" id="trend-severity" role="img" viewBox="0 0 {WIDTH} {BAR_H}" '
             f'width="{WIDTH}" height="{BAR_H}" xmlns="http://www.w3.org/2000/svg">',
             "<title>Open findings by severity per run</title>"]
    for frac in (0, 0.5, 1):
        y = TOP + plot * (1 - frac)
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>')
        parts.append(f'<text class="tick" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{int(top * frac)}</text>')
    for i, p in enumerate(points):
        x = _x(i, n) - width / 2
        base: float = TOP + plot
        for sev in reversed(SEVERITIES):  # info at the bottom, critical on top
            count = p.count(sev)
            if not count:
                continue
            h = plot * count / top
            base -= h
            parts.append(f'<rect class="bar sev-{sev}" data-run="{i}" data-severity="{sev}" x="{x:.1f}" '
                         f'y="{base:.1f}" width="{width:.1f}" height="{h:.1f}">'
                         f"<title>{escape(p.label)}: {count} {sev}</title></rect>")
        parts.append(f'<text class="total" x="{_x(i, n):.1f}" y="{base - 3:.1f}" text-anchor="middle">'
                     f"{p.total}</text>")
    parts += _labels(points, BAR_H)
    parts.append("</svg>")
    return Markup("".join(parts))


def coverage_chart(points: Sequence[RunPoint], delivery: bool) -> Markup:
    """Lines: the percentage of scanned account-regions with logging on (and delivering)."""
    n = len(points)
    plot = LINE_H - TOP - BOTTOM
    parts = [f'<svg class="trend" id="trend-coverage" role="img" viewBox="0 0 {WIDTH} {LINE_H}" '
             f'width="{WIDTH}" height="{LINE_H}" xmlns="http://www.w3.org/2000/svg">',
             "<title>Share of scanned account-regions with logging on per run</title>"]
    for pct in (0, 50, 100):
        y = TOP + plot * (1 - pct / 100)
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>')
        parts.append(f'<text class="tick" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{pct}%</text>')
    lines: list[tuple[str, str, Callable[[RunPoint], int]]] = [("logging-on", "logging on", lambda p: p.logging_on)]
    if delivery:
        lines.append(("delivering", "delivering", lambda p: p.delivering))
    for cls, name, value in lines:
        coords = []
        for i, p in enumerate(points):
            share = p.share(value(p))
            if share is None:
                continue
            coords.append((i, _x(i, n), TOP + plot * (1 - share), share, p))
        if len(coords) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for _, x, y, _, _ in coords)
            parts.append(f'<polyline class="line {cls}" points="{path}"/>')
        for i, x, y, share, p in coords:
            parts.append(f'<circle class="dot {cls}" data-run="{i}" cx="{x:.1f}" cy="{y:.1f}" r="3.5">'
                         f"<title>{escape(p.label)}: {name} {share:.0%} ({value(p)} of {p.cells})</title></circle>")
    parts += _labels(points, LINE_H)
    parts.append("</svg>")
    return Markup("".join(parts))
