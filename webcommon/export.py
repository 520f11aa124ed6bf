"""CSV for the report exports of the site and the region: text a spreadsheet opens safely.

csv_text(["service", "issued"], [("ktp", 12)])   # 'service,issued\\r\\nktp,12\\r\\n'
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> str:
    """One cell: None empty, numbers as numbers (floats without trailing zeros), and text that
    a spreadsheet would run as a formula (CSV injection) quoted with a leading apostrophe."""
    if value is None:
        return ""
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.4f}".rstrip("0").rstrip(".")
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_text(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """CSV with a header line (UTF-8 text, CRLF line ends), every cell through `csv_cell`."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([csv_cell(v) for v in row])
    return out.getvalue()


def csv_download(text: str, filename: str) -> Any:
    """A Flask response that downloads `text` as `filename`, with a UTF-8 byte order mark:
    spreadsheet programs then read names with non-ASCII letters right."""
    from flask import Response  # the hub's reports use this module without a web app

    return Response(
        "\ufeff" + text,
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
