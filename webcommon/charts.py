"""Small server-side SVG charts (no scripts, no CDN: the site server may be offline).

    svg = bar_chart([("KTP", (12.0, 30.0))], ("median", "p90"), unit="′")

Labels are never cut: the label column is as wide as the longest label needs (up to 40 % of
the chart), and a longer label wraps onto more lines with the whole text as its tooltip.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

from markupsafe import Markup, escape

COLOURS = ("#0b5cab", "#f0a202", "#1d7a3a", "#b3261e")
FONT = 11  # px, labels
CHAR_W = 6.6  # px: a generous average width of a character at FONT in a sans-serif face
LINE_H = 13
MAX_LINES = 3


def _fmt(value: float) -> str:
    return f"{value:.0f}" if value >= 10 or value == int(value) else f"{value:.1f}"


def wrap_label(label: str, max_chars: int) -> list[str]:
    """`label` in lines of at most `max_chars` (words kept whole where they fit); past
    MAX_LINES the last line ends with an ellipsis (the full text is the tooltip)."""
    lines = textwrap.wrap(label, max(4, max_chars), break_on_hyphens=False) or [""]
    if len(lines) > MAX_LINES:
        lines = [*lines[: MAX_LINES - 1], lines[MAX_LINES - 1][: max_chars - 1] + "…"]
    return lines


def _label(x: float, mid_y: float, lines: list[str], full: str) -> str:
    top = mid_y - (len(lines) - 1) * LINE_H / 2 + 4
    spans = "".join(
        f'<tspan x="{x}" y="{top + i * LINE_H:.1f}">{escape(line)}</tspan>'
        for i, line in enumerate(lines)
    )
    return (
        f'<text class="label" font-size="{FONT}" text-anchor="end"><title>{escape(full)}</title>'
        f"{spans}</text>"
    )


def bar_chart(
    rows: Sequence[tuple[str, Sequence[float | None]]],
    series: Sequence[str],
    *,
    unit: str = "",
    width: int = 640,
    title: str = "",
) -> Markup:
    """Horizontal grouped bars: one group per row, one bar per series (None: no bar); a legend
    when there is more than one series."""
    bar_h, gap = 14, 10
    max_chars = int((width * 0.4 - 12) / CHAR_W)
    labels = [wrap_label(label, max_chars) for label, _ in rows]
    longest = max((len(line) for lines in labels for line in lines), default=4)
    label_w = int(min(width * 0.4, max(60, longest * CHAR_W + 12)))
    legend = len(series) > 1
    top = 8 + (16 if title else 0) + (18 if legend else 0)
    heights = [max(bar_h * len(series), len(lines) * LINE_H) + gap for lines in labels] or [
        bar_h + gap
    ]
    height = top + sum(heights) + 8
    peak = max((v for _, vs in rows for v in vs if v is not None), default=0.0) or 1.0
    plot_w = width - label_w - 64  # room for the value after the longest bar
    parts = [
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{escape(title)}">'
    ]
    if title:
        parts.append(f'<text x="8" y="16" font-size="13" font-weight="bold">{escape(title)}</text>')
    if legend:
        for i, name in enumerate(series):
            x = label_w + i * 110
            parts.append(
                f'<rect x="{x}" y="{top - 18}" width="10" height="10" fill="{COLOURS[i % 4]}"/>'
                f'<text x="{x + 14}" y="{top - 9}" font-size="{FONT}">{escape(name)}</text>'
            )
    y = top
    for (label, values), lines, group_h in zip(rows, labels, heights, strict=False):
        bars_h = bar_h * len(series)
        parts.append(_label(label_w - 6, y + (group_h - gap) / 2, lines, label))
        bar_top = y + (group_h - gap - bars_h) / 2
        for i, value in enumerate(values):
            if value is None:
                continue
            w = max(1.0, plot_w * value / peak)
            by = bar_top + i * bar_h
            parts.append(
                f'<rect class="bar" x="{label_w}" y="{by:.1f}" width="{w:.1f}" '
                f'height="{bar_h - 2}" fill="{COLOURS[i % 4]}" data-value="{value:.3f}"/>'
                f'<text x="{label_w + w + 4:.1f}" y="{by + bar_h - 4:.1f}" font-size="10">'
                f"{_fmt(value)}{escape(unit)}</text>"
            )
        y += group_h
    parts.append("</svg>")
    return Markup("".join(parts))


def heatmap(grid: Sequence[Sequence[int]], day_names: Sequence[str], *, title: str = "") -> Markup:
    """A weekday x hour grid; darker cells had more tickets (the count is in each cell's title)."""
    cell, left, top = 22, 70, 22 + (16 if title else 0)
    hours = [h for h in range(24) if any(row[h] for row in grid)] or list(range(7, 17))
    first, last = min(hours), max(hours)
    span = list(range(first, last + 1))
    width = max(left + cell * len(span) + 8, int(len(title) * CHAR_W * 13 / FONT) + 16)
    height = top + cell * len(grid) + 8
    peak = max((v for row in grid for v in row), default=0) or 1
    parts = [
        f'<svg class="chart heatmap" xmlns="http://www.w3.org/2000/svg" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'aria-label="{escape(title)}">'
    ]
    if title:
        parts.append(f'<text x="8" y="16" font-size="13" font-weight="bold">{escape(title)}</text>')
    for j, hour in enumerate(span):
        parts.append(
            f'<text x="{left + j * cell + cell / 2}" y="{top - 6}" font-size="10" '
            f'text-anchor="middle">{hour:02d}</text>'
        )
    for i, row in enumerate(grid):
        y = top + i * cell
        parts.append(
            f'<text x="{left - 6}" y="{y + 15}" font-size="{FONT}" text-anchor="end">'
            f"{escape(day_names[i])}</text>"
        )
        for j, hour in enumerate(span):
            value = row[hour]
            shade = 0.06 + 0.94 * value / peak if value else 0.0
            parts.append(
                f'<rect class="cell" x="{left + j * cell}" y="{y}" width="{cell - 2}" '
                f'height="{cell - 2}" fill="#0b5cab" fill-opacity="{shade:.2f}" stroke="#d8dde4" '
                f'data-count="{value}"><title>{escape(day_names[i])} {hour:02d}:00 — '
                f"{value}</title></rect>"
            )
    parts.append("</svg>")
    return Markup("".join(parts))
