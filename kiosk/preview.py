"""A ticket layout drawn as a PNG (Pillow + qrcode), for technicians and the docs.

It draws the same blocks the printer prints, at the printer's dot width (576 dots on 80 mm
paper), so line breaks and proportions match the paper closely::

    image = render_preview(ticket_layout(site, info), width_mm=80)
    image.save("ticket.png")
"""

from __future__ import annotations

import logging
from pathlib import Path

import qrcode
from PIL import Image, ImageDraw, ImageFont, UnidentifiedImageError

from kiosk.printer import LOGO_MAX_HEIGHT, NUMBER_MAX_SCALE, PAPER_COLUMNS, PAPER_DOTS
from kiosk.ticket import Block, Cut, Feed, Logo, Number, Qr, Rule, Text

log = logging.getLogger("mpp.kiosk")

FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
MARGIN = 24
LINE_DOTS = 24  # font A is 12 x 24 dots
Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


def _font(size: int, bold: bool = False) -> Font:
    """DejaVu Sans when installed (Debian, Raspberry Pi OS), else Pillow's built-in font."""
    path = FONT_DIR / ("DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf")
    try:
        return ImageFont.truetype(str(path), size)
    except OSError:
        return ImageFont.load_default(size)


def _wrap(text: str, font: Font, width: int) -> list[str]:
    """Greedy word wrap to a pixel width (long words are cut)."""
    lines: list[str] = []
    line = ""
    for word in text.split():
        candidate = f"{line} {word}".strip()
        if font.getlength(candidate) <= width:
            line = candidate
            continue
        if line:
            lines.append(line)
        rest = word
        while font.getlength(rest) > width and len(rest) > 1:
            cut = len(rest)
            while cut > 1 and font.getlength(rest[:cut]) > width:
                cut -= 1
            lines.append(rest[:cut])
            rest = rest[cut:]
        line = rest
    if line:
        lines.append(line)
    return lines


class _Canvas:
    """A growing strip of paper we draw on from top to bottom."""

    def __init__(self, dots: int, columns: int) -> None:
        self.dots = dots
        self.columns = columns
        self.image = Image.new("L", (dots + 2 * MARGIN, 4000), 255)
        self.draw = ImageDraw.Draw(self.image)
        self.y = MARGIN
        # A font size whose average character is as wide as one printer column.
        self.normal = self._fit_size(dots / columns)

    @staticmethod
    def _fit_size(char_width: float) -> int:
        sample = "Antrian di depan Anda 0123456789"
        size = 10
        while _font(size + 1).getlength(sample) / len(sample) <= char_width and size < 200:
            size += 1
        return size

    def ensure(self, height: int) -> None:
        if self.y + height + MARGIN <= self.image.height:
            return
        grown = Image.new("L", (self.image.width, self.image.height * 2 + height), 255)
        grown.paste(self.image, (0, 0))
        self.image, self.draw = grown, ImageDraw.Draw(grown)

    def text(self, text: str, font: Font, align: str, line_height: int) -> None:
        for line in _wrap(text, font, self.dots):
            self.ensure(line_height)
            width = font.getlength(line)
            x = (
                MARGIN
                + {"left": 0, "center": (self.dots - width) / 2, "right": self.dots - width}[align]
            )
            top = self.y + (line_height - font.size) // 2 if hasattr(font, "size") else self.y
            self.draw.text((x, top), line, font=font, fill=0)
            self.y += line_height

    def paste_center(self, image: Image.Image) -> None:
        self.ensure(image.height)
        self.image.paste(image, (MARGIN + (self.dots - image.width) // 2, self.y))
        self.y += image.height


def render_preview(layout: list[Block], width_mm: int = 80) -> Image.Image:
    """The ticket as a grayscale image: white paper, black print, a dashed line at the cut."""
    dots, columns = PAPER_DOTS[width_mm], PAPER_COLUMNS[width_mm]
    canvas = _Canvas(dots, columns)
    normal = canvas.normal
    for block in layout:
        match block:
            case Text():
                font = _font(normal * block.size, block.bold)
                canvas.text(block.text, font, block.align, LINE_DOTS * block.size)
            case Number():
                scale = max(2, min(NUMBER_MAX_SCALE, columns // max(1, len(block.text))))
                font = _font(round(normal * scale * 1.1), bold=True)
                canvas.text(block.text, font, "center", LINE_DOTS * scale)
            case Qr():
                code = qrcode.QRCode(
                    error_correction=qrcode.constants.ERROR_CORRECT_M,
                    box_size=6 if width_mm == 80 else 5,
                    border=2,
                )
                code.add_data(block.payload)
                code.make(fit=True)
                canvas.paste_center(code.make_image().get_image().convert("L"))
            case Logo():
                try:
                    with Image.open(block.path) as source:
                        logo = source.convert("L")
                except (OSError, UnidentifiedImageError) as exc:
                    log.warning(
                        "preview logo skipped", extra={"path": str(block.path), "error": str(exc)}
                    )
                    continue
                logo.thumbnail((dots, LOGO_MAX_HEIGHT))
                canvas.paste_center(logo)
            case Rule():
                canvas.ensure(LINE_DOTS)
                middle = canvas.y + LINE_DOTS // 2
                canvas.draw.line((MARGIN, middle, MARGIN + dots, middle), fill=0, width=2)
                canvas.y += LINE_DOTS
            case Feed():
                canvas.ensure(LINE_DOTS * block.lines)
                canvas.y += LINE_DOTS * block.lines
            case Cut():
                canvas.ensure(LINE_DOTS * 2)
                canvas.y += LINE_DOTS
                for x in range(0, canvas.image.width, 16):
                    canvas.draw.line((x, canvas.y, x + 8, canvas.y), fill=0, width=2)
                canvas.y += 2
    return canvas.image.crop((0, 0, canvas.image.width, canvas.y + MARGIN // 2))


def save_preview(layout: list[Block], path: str | Path, width_mm: int = 80) -> Path:
    """Render and write the preview PNG; returns the path written."""
    path = Path(path)
    render_preview(layout, width_mm).save(path, format="PNG", optimize=True)
    return path
