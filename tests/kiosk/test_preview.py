"""The PNG preview: the ESC/POS bytes the printer gets, drawn as that printer prints them."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from kiosk.preview import PAPER_WIDTH, PreviewError, VirtualPrinter, render_preview, save_preview
from kiosk.printer import render
from kiosk.ticket import Logo, ticket_layout
from protocol.messages import TicketInfo
from protocol.site import Printer, load_site
from tests.conftest import EXAMPLE, ROOT
from tests.kiosk.escpos_bytes import parse

SITE = load_site(EXAMPLE)
INFO = TicketInfo(
    id=1,
    number="H012",
    service="skck",
    issued_at=1795420800.0,
    token="tok",
    people_ahead=5,
    est_wait_s=2400,
)
WIDE = Printer(connection="dummy", profile="TM-T20II")
NARROW = Printer(connection="dummy", profile="default", width_mm=58)
GENERIC = Printer(connection="dummy", profile="POS-5890", width_mm=58)  # QR as an image


def _ink(image: Image.Image, box: tuple[int, int, int, int]) -> tuple[int, int, int, int] | None:
    """The bounding box of the dark dots inside `box` (None: nothing printed there)."""
    crop = image.crop(box).point(lambda v: 255 if v < 128 else 0)
    found = crop.getbbox()
    if found is None:
        return None
    return box[0] + found[0], box[1] + found[1], box[0] + found[2], box[1] + found[3]


@pytest.mark.parametrize("spec", [NARROW, GENERIC, WIDE], ids=lambda s: s.profile)
@pytest.mark.parametrize("lang", ["id", "en"])
def test_preview_breaks_lines_exactly_where_the_printer_does(spec: Printer, lang: str) -> None:
    data = render(ticket_layout(SITE, INFO, lang), spec)
    printer = VirtualPrinter(spec).feed(data)
    image = printer.image()
    drawn = [line.text for line in printer.lines if line.text]
    sent = [line.text for line in parse(data).lines if line.text]
    assert drawn == sent  # no line is broken differently (or by the printer's own wrap)
    for line in printer.lines:
        if line.text.strip():  # every line is really drawn, inside the print area
            ink = _ink(image, (0, line.top, image.width, line.top + line.height))
            margin = (PAPER_WIDTH[spec.width_mm] - (384 if spec.width_mm == 58 else 576)) // 2
            assert ink is not None and ink[0] >= margin and ink[2] <= image.width - margin
    assert image.width == PAPER_WIDTH[spec.width_mm]


def test_58mm_number_is_one_line_at_the_printed_size() -> None:
    data = render(ticket_layout(SITE, INFO, "id"), NARROW)
    sent = parse(data).find("H012")
    printer = VirtualPrinter(NARROW).feed(data)
    image = printer.image()
    [line] = [line for line in printer.lines if "H01" in line.text]
    assert line.text == "H012" and line.scale == (sent.width, sent.height) == (6, 6)
    ink = _ink(image, (0, line.top, image.width, line.top + line.height))
    assert ink is not None
    cell_w, cell_h = 12 * sent.width, 24 * sent.height  # font A's 12 x 24 dots, scaled
    ink_w, ink_h = ink[2] - ink[0], ink[3] - ink[1]
    assert 0.8 * 4 * cell_w <= ink_w <= 4 * cell_w  # as wide as the printed digits, no wider
    assert 0.5 * cell_h <= ink_h <= cell_h


def test_a_native_qr_and_a_raster_qr_are_both_drawn_centred() -> None:
    for spec in (WIDE, GENERIC):
        printer = VirtualPrinter(spec).feed(render(ticket_layout(SITE, INFO, "id"), spec))
        image = printer.image()
        scan = next(line for line in printer.lines if line.text.startswith("Pindai"))
        rule = max(line.top for line in printer.lines if line.text.startswith("----"))
        ink = _ink(image, (0, rule + 30, image.width, scan.top))
        assert ink is not None
        size = ink[2] - ink[0]
        assert abs((ink[3] - ink[1]) - size) <= 6 and size >= 120  # a square block of modules
        assert abs((ink[0] + ink[2]) / 2 - image.width / 2) <= 6


def test_logo_and_unknown_commands() -> None:
    printed = render_preview(render(ticket_layout(SITE, INFO, "id"), WIDE), WIDE)
    assert printed.mode == "L" and 800 < printed.height < 1800
    with pytest.raises(PreviewError, match="ESC 0x70"):
        render_preview(b"\x1bp\x00\x19\xfa", WIDE)  # a cash drawer kick: not ours


def test_logo_is_drawn_dot_for_dot(tmp_path: Path) -> None:
    logo = tmp_path / "logo.png"
    Image.new("L", (400, 100), 0).save(logo)
    plain = render_preview(render(ticket_layout(SITE, INFO, "id"), WIDE), WIDE)
    with_logo = render_preview(render([Logo(logo), *ticket_layout(SITE, INFO, "id")], WIDE), WIDE)
    assert with_logo.height == plain.height + 100
    ink = _ink(with_logo, (0, 0, with_logo.width, 100 + 8))
    assert ink is not None and ink[2] - ink[0] == 400


def test_save_writes_a_png(tmp_path: Path) -> None:
    data = render(ticket_layout(SITE, INFO, "en"), WIDE)
    path = save_preview(data, tmp_path / "t.png", WIDE)
    with Image.open(path) as image:
        assert image.format == "PNG" and image.width == PAPER_WIDTH[80]


def test_docs_show_a_ticket_of_the_example_site() -> None:
    with Image.open(ROOT / "docs" / "ticket-example.png") as image:
        assert image.format == "PNG" and image.width == PAPER_WIDTH[80]
        assert image.height > 700
