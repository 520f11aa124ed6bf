"""A server-side SVG bar chart (no scripts, no CDN)."""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape


def bars(rows: Sequence[tuple[str, float | None]], *, title: str = "", width: int = 640) -> Markup:
    """Horizontal bars, one per row (None: no bar), with the value at the end."""
    bar_h, gap, label_w, top = 16, 6, 200, 28
    height = top + (bar_h + gap) * max(1, len(rows)) + 8
    peak = max((v for _, v in rows if v is not None), default=0.0) or 1.0
    plot_w = width - label_w - 60
    out = [
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{escape(title)}">',
        f'<text x="4" y="16" font-size="13" font-weight="bold">{escape(title)}</text>',
    ]
    for i, (label, value) in enumerate(rows):
        y = top + i * (bar_h + gap)
        out.append(
            f'<text x="{label_w - 6}" y="{y + 12}" font-size="12" text-anchor="end">'
            f"{escape(label[:32])}</text>"
        )
        if value is not None:
            w = max(1.0, plot_w * value / peak)
            out.append(
                f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="#0b5cab"/>'
            )
            out.append(
                f'<text x="{label_w + w + 4:.1f}" y="{y + 12}" font-size="12">{value:.1f}</text>'
            )
    out.append("</svg>")
    return Markup("".join(out))
