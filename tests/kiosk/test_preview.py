"""The PNG preview of a ticket (Pillow + qrcode), and the example in the docs."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from kiosk.preview import MARGIN, render_preview, save_preview
from kiosk.ticket import Logo, ticket_layout
from protocol.messages import TicketInfo
from protocol.site import load_site
from tests.conftest import EXAMPLE, ROOT

SITE = load_site(EXAMPLE)
INFO = TicketInfo(
    id=1,
    number="A012",
    service="ktp",
    issued_at=1795420800.0,
    token="tok",
    people_ahead=5,
    est_wait_s=2400,
)


def _dark_rows(image: Image.Image) -> list[int]:
    """Rows that hold any printed (dark) pixel."""
    width, height = image.size
    pixels = image.load()
    return [y for y in range(height) if any(pixels[x, y] < 128 for x in range(0, width, 2))]


def test_preview_is_paper_wide_and_holds_a_big_number_and_a_qr_code() -> None:
    image = render_preview(ticket_layout(SITE, INFO, "id"), width_mm=80)
    assert image.mode == "L" and image.width == 576 + 2 * MARGIN
    assert 700 < image.height < 1600
    rows = _dark_rows(image)
    assert rows and rows[0] >= MARGIN // 2
    # The QR code: a square block of dark modules, centred, about 25 modules of 6 dots.
    pixels = image.load()
    qr_rows = [y for y in rows if pixels[image.width // 2 - 60, y] < 128]
    assert len(qr_rows) > 40


def test_narrow_paper_preview_is_narrower_and_longer() -> None:
    wide = render_preview(ticket_layout(SITE, INFO, "id"), width_mm=80)
    narrow = render_preview(ticket_layout(SITE, INFO, "id"), width_mm=58)
    assert narrow.width == 384 + 2 * MARGIN
    assert narrow.height > wide.height


def test_logo_is_drawn_and_a_broken_logo_is_skipped(tmp_path: Path) -> None:
    logo = tmp_path / "logo.png"
    Image.new("L", (400, 100), 0).save(logo)
    plain = render_preview(ticket_layout(SITE, INFO, "id"))
    with_logo = render_preview([Logo(logo), *ticket_layout(SITE, INFO, "id")])
    assert with_logo.height >= plain.height + 100
    (tmp_path / "bad.png").write_bytes(b"not an image")
    broken = render_preview([Logo(tmp_path / "bad.png"), *ticket_layout(SITE, INFO, "id")])
    assert broken.height == plain.height


def test_save_writes_a_png(tmp_path: Path) -> None:
    path = save_preview(ticket_layout(SITE, INFO, "en"), tmp_path / "t.png")
    with Image.open(path) as image:
        assert image.format == "PNG" and image.width == 576 + 2 * MARGIN


def test_docs_show_a_ticket_of_the_example_site() -> None:
    with Image.open(ROOT / "docs" / "ticket-example.png") as image:
        assert image.format == "PNG" and image.width == 576 + 2 * MARGIN
        assert image.height > 700
