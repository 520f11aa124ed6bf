"""Small server-side SVG charts (no scripts, no CDN: the site server may be offline).

svg = bar_chart([("KTP", (12.0, 30.0))], ("median", "p90"), unit="min")
"""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

COLOURS = ("#0b5cab", "#f0a202", "#1d7a3a", "#b3261e")


def _fmt(value: float) -> str:
    return f"{value:.0f}" if value >= 10 or value == int(value) else f"{value:.1f}"


def bar_chart(
    rows: Sequence[tuple[str, Sequence[float | None]]],
    series: Sequence[str],
    *,
    unit: str = "",
    width: int = 640,
    title: str = "",
) -> Markup:
    """Horizontal grouped bars: one group per row, one bar per series (None: no bar)."""
    bar_h, gap, label_w, top = 14, 10, 170, 24 + (16 if title else 0)
    group_h = bar_h * len(series) + gap
    height = top + group_h * max(1, len(rows)) + 8
    peak = max((v for _, vs in rows for v in vs if v is not None), default=0.0) or 1.0
    plot_w = width - label_w - 60
    parts = [
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{escape(title)}">'
    ]
    if title:
        parts.append(f'<text x="8" y="16" font-size="13" font-weight="bold">{escape(title)}</text>')
    for i, name in enumerate(series):
        x = label_w + i * 110
        parts.append(
            f'<rect x="{x}" y="{top - 18}" width="10" height="10" fill="{COLOURS[i % 4]}"/>'
            f'<text x="{x + 14}" y="{top - 9}" font-size="11">{escape(name)}</text>'
        )
    for row, (label, values) in enumerate(rows):
        y = top + row * group_h
        parts.append(
            f'<text x="{label_w - 6}" y="{y + bar_h * len(series) / 2 + 4}" font-size="11" '
            f'text-anchor="end">{escape(label[:28])}</text>'
        )
        for i, value in enumerate(values):
            if value is None:
                continue
            w = max(1.0, plot_w * value / peak)
            by = y + i * bar_h
            parts.append(
                f'<rect class="bar" x="{label_w}" y="{by}" width="{w:.1f}" height="{bar_h - 2}" '
                f'fill="{COLOURS[i % 4]}" data-value="{value:.3f}"/>'
                f'<text x="{label_w + w + 4:.1f}" y="{by + bar_h - 4}" font-size="10">'
                f"{_fmt(value)}{escape(unit)}</text>"
            )
    parts.append("</svg>")
    return Markup("".join(parts))


def heatmap(grid: Sequence[Sequence[int]], day_names: Sequence[str], *, title: str = "") -> Markup:
    """A weekday x hour grid; darker cells had more tickets (the count is in each cell's title)."""
    cell, left, top = 22, 70, 22 + (16 if title else 0)
    hours = [h for h in range(24) if any(row[h] for row in grid)] or list(range(7, 17))
    first, last = min(hours), max(hours)
    span = list(range(first, last + 1))
    width, height = left + cell * len(span) + 8, top + cell * len(grid) + 8
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
            f'<text x="{left - 6}" y="{y + 15}" font-size="11" text-anchor="end">'
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
