"""Server-side SVG charts: bar lengths proportional, labels escaped, heat map cells counted."""

from __future__ import annotations

import re

from webcommon.charts import bar_chart, heatmap


def test_bars_are_proportional_and_labels_escaped() -> None:
    svg = str(
        bar_chart([("<KTP>", (10.0, 20.0)), ("KK", (5.0, None))], ("median", "p90"), width=640)
    )
    widths = [float(w) for w in re.findall(r'class="bar" x="\d+" y="[\d.]+" width="([\d.]+)"', svg)]
    assert len(widths) == 3  # the missing p90 draws no bar
    assert abs(widths[0] / widths[1] - 0.5) < 0.01 and abs(widths[2] / widths[1] - 0.25) < 0.01
    assert "&lt;KTP&gt;" in svg and "<KTP>" not in svg


def test_heatmap_covers_busy_hours_only() -> None:
    grid = [[0] * 24 for _ in range(7)]
    grid[0][9], grid[4][14] = 4, 1
    svg = str(heatmap(grid, ["Sen", "Sel", "Rab", "Kam", "Jum", "Sab", "Min"]))
    assert svg.count('class="cell"') == 7 * 6  # 09:00 to 14:00
    assert 'data-count="4"' in svg and 'fill-opacity="1.00"' in svg


def test_long_labels_are_wrapped_whole_not_cut() -> None:
    long = "U9 Penanganan Pengaduan, Saran dan Masukan dari Masyarakat"
    svg = str(bar_chart([(long, (3.1,)), ("KK", (2.0,))], ("NRR",), title="IKM"))
    spans = re.findall(r"<tspan[^>]*>([^<]*)</tspan>", svg)
    assert " ".join(spans[:-1]) == long  # every word shown, on more than one line
    assert len(spans) > 2 and spans[-1] == "KK"
    assert f"<title>{long}</title>" in svg
    assert "font-weight" in svg and 'class="bar"' in svg
    # the label column holds the longest line: no line's estimated width passes the bars
    label_w = int(re.search(r'class="bar" x="(\d+)"', svg)[1])
    assert all(len(s) * 6.6 + 6 <= label_w for s in spans)


def test_one_series_has_no_legend() -> None:
    one = str(bar_chart([("KTP", (1.0,))], ("menit",)))
    two = str(bar_chart([("KTP", (1.0, 2.0))], ("median", "p90")))
    assert ">menit<" not in one and ">median<" in two and ">p90<" in two
