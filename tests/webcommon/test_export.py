"""Report CSV: cells a spreadsheet would run as formulas are quoted, numbers stay numbers."""

from __future__ import annotations

import csv
import io

from webcommon.export import csv_cell, csv_text


def test_formula_cells_are_defused() -> None:
    for text in ("=HYPERLINK(1)", "+1", "-2+3", "@SUM(A1)", "\tx", "\rx"):
        assert csv_cell(text) == "'" + text
    assert csv_cell("KTP-el") == "KTP-el" and csv_cell(None) == ""
    assert csv_cell(12.5) == "12.5" and csv_cell(3.0) == "3" and csv_cell(-4) == "-4"


def test_csv_text_reads_back() -> None:
    text = csv_text(["unit", "n"], [("=cmd", 1), ('say "hi", ok', 2.25)])
    assert text.endswith("\r\n")
    assert list(csv.reader(io.StringIO(text))) == [
        ["unit", "n"],
        ["'=cmd", "1"],
        ['say "hi", ok', "2.25"],
    ]
