"""The printed ticket as a picture: the ESC/POS bytes the printer gets, drawn on paper (Pillow).

The preview is not a second layout of the ticket: it interprets the very bytes
`kiosk.printer.render` sends, as a thermal printer of the inventory's paper width and profile
prints them. Font A is 12 x 24 dots (font B 9 x 17) in a monospaced face, GS ! multiplies a
character's dots, a line longer than the printable width goes on on the next line (as the
printer's own wrap does), native QR codes are drawn from the data stored in the printer, raster
images dot for dot, and a cut as a dashed line. One pixel is one printer dot (203 dpi)::

    data = render(ticket_layout(site, info, "id"), spec)    # what the printer gets
    image = render_preview(data, spec)                       # what the citizen holds
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import qrcode
from PIL import Image, ImageDraw, ImageFont

from kiosk.errors import KioskError
from kiosk.printer import PAPER_DOTS
from protocol.site import Printer

log = logging.getLogger("mpp.kiosk")

FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
PAPER_WIDTH = {80: 640, 58: 464}  # dots across the roll at 203 dpi (the print area is centred)
LINE_SPACING = 30  # dots from one line of font A to the next (3.75 mm, ESC 2)
CELLS = {0: (12, 24), 1: (9, 17)}  # font -> character cell (width, height) in dots
FONT_PX = {0: 20, 1: 15}  # monospaced face size whose advance fills the cell
ESC, GS, DLE, LF = 0x1B, 0x1D, 0x10, 0x0A
QR_LEVELS = {
    48: qrcode.constants.ERROR_CORRECT_L,
    49: qrcode.constants.ERROR_CORRECT_M,
    50: qrcode.constants.ERROR_CORRECT_Q,
    51: qrcode.constants.ERROR_CORRECT_H,
}


class PreviewError(KioskError):
    """The bytes hold a command the preview cannot draw (it would not be what is printed)."""


@functools.cache
def _face(font: int, bold: bool) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """DejaVu Sans Mono (the printer's fonts are monospaced), else Pillow's built-in font."""
    name = "DejaVuSansMono-Bold.ttf" if bold else "DejaVuSansMono.ttf"
    try:
        return ImageFont.truetype(str(FONT_DIR / name), FONT_PX[font])
    except OSError:
        return ImageFont.load_default(FONT_PX[font])


@functools.cache
def _glyph(char: str, font: int, bold: bool) -> Image.Image:
    """One character in its cell at 1 x 1, in black dots only (a thermal head has no grey)."""
    width, height = CELLS[font]
    cell = Image.new("L", (width, height), 255)
    ascent = round(height * 0.79)
    ImageDraw.Draw(cell).text(
        (width / 2, ascent), char, font=_face(font, bold), fill=0, anchor="ms"
    )
    return cell.point(lambda v: 0 if v < 128 else 255)


@functools.cache
def _code_table(profile: str, page: int) -> tuple[str, ...]:
    """The 128 characters of bytes 0x80-0xFF in code page `page` of this printer profile."""
    from escpos.capabilities import get_profile
    from escpos.codepages import CodePages
    from escpos.magicencode import Encoder

    name = get_profile(profile).codePages.get(str(page), "CP437")
    try:
        chars = Encoder._get_codepage_char_list(CodePages.get_encoding_name(name))
    except Exception:
        chars = Encoder._get_codepage_char_list("CP437")
    return tuple(chars)


@dataclass
class _Char:
    char: str
    font: int
    bold: bool
    width: int  # multipliers (GS !, ESC !)
    height: int

    @property
    def size(self) -> tuple[int, int]:
        cell_w, cell_h = CELLS[self.font]
        return cell_w * self.width, cell_h * self.height


@dataclass
class PrintedLine:
    """One line as the printer laid it out: its text, top, height and left edge in dots."""

    text: str
    top: int
    height: int
    left: int
    scale: tuple[int, int]


@dataclass
class _Paper:
    """A roll the head prints on, top to bottom; grows as it is fed."""

    spec: Printer
    dots: int = 0
    margin: int = 0
    image: Image.Image = field(init=False)
    y: int = 8

    def __post_init__(self) -> None:
        self.dots = PAPER_DOTS[self.spec.width_mm]
        self.margin = (PAPER_WIDTH[self.spec.width_mm] - self.dots) // 2
        self.image = Image.new("L", (PAPER_WIDTH[self.spec.width_mm], 2000), 255)

    def room(self, height: int) -> None:
        if self.y + height + 16 > self.image.height:
            grown = Image.new("L", (self.image.width, self.image.height * 2 + height), 255)
            grown.paste(self.image, (0, 0))
            self.image = grown

    def left(self, width: int, align: int) -> int:
        offset = {0: 0, 1: (self.dots - width) // 2, 2: self.dots - width}.get(align, 0)
        return self.margin + max(0, offset)

    def paste(self, picture: Image.Image, align: int) -> int:
        self.room(picture.height)
        x = self.left(picture.width, align)
        self.image.paste(picture, (x, self.y))
        self.y += picture.height
        return x


class VirtualPrinter:
    """Interprets ESC/POS bytes as the inventory's printer would print them.

    `lines` records every printed line of text (after the printer's own wrapping), so a test
    or a technician can compare the picture with what the bytes say.
    """

    def __init__(self, spec: Printer) -> None:
        self.spec = spec
        self.paper = _Paper(spec)
        self.lines: list[PrintedLine] = []
        self.cuts: list[int] = []  # y of each cut
        self._reset()

    def _reset(self) -> None:
        self.align = 0
        self.bold = False
        self.font = 0
        self.width = self.height = 1
        self.page = 0
        self.spacing = LINE_SPACING
        self.pending: list[_Char] = []
        self.qr: dict[str, Any] = {"size": 3, "level": QR_LEVELS[48], "data": b""}

    # -- text -----------------------------------------------------------------------------
    def _put(self, char: str) -> None:
        glyph = _Char(char, self.font, self.bold, self.width, self.height)
        used = sum(c.size[0] for c in self.pending)
        if self.pending and used + glyph.size[0] > self.paper.dots:
            self._print_line()  # the printer's own wrap: the rest goes on the next line
        self.pending.append(glyph)

    def _print_line(self, feed: bool = True) -> None:
        """Print the buffered characters (bottom-aligned) and feed one line."""
        chars, self.pending = self.pending, []
        cell_h = CELLS[self.font][1] * self.height
        height = max([c.size[1] for c in chars], default=cell_h)
        advance = max(self.spacing, height) if feed else height
        self.paper.room(advance)
        if chars:
            width = sum(c.size[0] for c in chars)
            x = left = self.paper.left(width, self.align)
            for c in chars:
                w, h = c.size
                glyph = _glyph(c.char, c.font, c.bold)
                if (c.width, c.height) != (1, 1):
                    glyph = glyph.resize((w, h), Image.Resampling.NEAREST)
                self.paper.image.paste(glyph, (x, self.paper.y + height - h))
                x += w
            scale = (max(c.width for c in chars), max(c.height for c in chars))
            text = "".join(c.char for c in chars)
            self.lines.append(PrintedLine(text, self.paper.y, height, left, scale))
        self.paper.y += advance

    def _flush(self) -> None:
        """Print what is buffered before a picture (no empty line when nothing is)."""
        if self.pending:
            self._print_line()

    def _char(self, byte: int) -> str:
        if byte < 0x80:
            return chr(byte)
        return _code_table(self.spec.profile, self.page)[byte - 0x80]

    # -- pictures -------------------------------------------------------------------------
    def _raster(self, data: bytes, at: int) -> int:
        """GS v 0 m xL xH yL yH d...: a raster image, 1 bit per dot; returns its length."""
        mode = data[at + 3]
        x_bytes = data[at + 4] + 256 * data[at + 5]
        rows = data[at + 6] + 256 * data[at + 7]
        body = data[at + 8 : at + 8 + x_bytes * rows]
        picture = Image.frombytes("1", (x_bytes * 8, rows), bytes(body)).convert("L")
        picture = Image.eval(picture, lambda v: 255 - v)  # a set bit is a black dot
        if mode in (1, 3):
            picture = picture.resize((picture.width * 2, picture.height), Image.Resampling.NEAREST)
        if mode in (2, 3):
            picture = picture.resize((picture.width, picture.height * 2), Image.Resampling.NEAREST)
        self._flush()
        self.paper.paste(picture, self.align)
        return 8 + x_bytes * rows

    def _qr_function(self, body: bytes) -> None:
        """GS ( k with cn = '1': QR code model, size, error level, store, print."""
        fn = body[1]
        if fn == 67:
            self.qr["size"] = body[2]
        elif fn == 69:
            self.qr["level"] = QR_LEVELS.get(body[2], QR_LEVELS[48])
        elif fn == 80:
            self.qr["data"] = bytes(body[3:])
        elif fn == 81:
            code = qrcode.QRCode(
                error_correction=self.qr["level"], box_size=self.qr["size"], border=0
            )
            code.add_data(self.qr["data"].decode("utf-8", "replace"))
            code.make(fit=True)
            self._flush()
            self.paper.paste(code.make_image().get_image().convert("L"), self.align)

    def _cut(self) -> None:
        self._flush()
        self.paper.room(24)
        self.paper.y += 12
        self.cuts.append(self.paper.y)
        draw = ImageDraw.Draw(self.paper.image)
        for x in range(0, self.paper.image.width, 16):
            draw.line((x, self.paper.y, x + 8, self.paper.y), fill=0, width=2)
        self.paper.y += 12

    # -- the byte stream ------------------------------------------------------------------
    def feed(self, data: bytes) -> VirtualPrinter:
        """Print `data`; raises PreviewError at a command this preview does not know."""
        i = 0
        while i < len(data):
            byte = data[i]
            if byte == LF:
                self._print_line()
                i += 1
            elif byte == ESC:
                i += self._esc(data, i)
            elif byte == GS:
                i += self._gs(data, i)
            elif byte == DLE and data[i + 1 : i + 2] == b"\x04":
                i += 3  # a status request: nothing printed
            elif byte == 0x0D:
                i += 1
            elif byte < 0x20:
                raise PreviewError(f"control byte {byte:#04x} at {i} is not drawn by the preview")
            else:
                self._put(self._char(byte))
                i += 1
        return self

    def _esc(self, data: bytes, i: int) -> int:
        cmd = data[i + 1]
        arg = data[i + 2] if i + 2 < len(data) else 0
        match chr(cmd):
            case "@":
                self._flush()
                self._reset()
                return 2
            case "2":
                self.spacing = LINE_SPACING
                return 2
            case "!":
                self.font = arg & 0x01
                self.bold = bool(arg & 0x08)
                self.height = 2 if arg & 0x10 else 1
                self.width = 2 if arg & 0x20 else 1
            case "E":
                self.bold = bool(arg & 0x01)
            case "M":
                self.font = 1 if arg in (1, 49) else 0
            case "a":
                self.align = arg - 48 if arg >= 48 else arg
            case "t":
                self.page = arg
            case "3":
                self.spacing = arg
            case "d":
                self._print_line()
                for _ in range(arg - 1):
                    self._print_line()
            case "J":
                self._print_line(feed=False)
                self.paper.y += arg
            case "-" | "G" | "{":
                pass  # underline, double strike, upside down: not used on our tickets
            case _:
                raise PreviewError(f"ESC {cmd:#04x} at byte {i} is not drawn by the preview")
        return 3

    def _gs(self, data: bytes, i: int) -> int:
        cmd = data[i + 1]
        match chr(cmd):
            case "!":
                arg = data[i + 2]
                self.width, self.height = (arg >> 4) + 1, (arg & 0x0F) + 1
                return 3
            case "(" if data[i + 2] in (ord("k"), ord("L")):
                length = data[i + 3] + 256 * data[i + 4]
                body = data[i + 5 : i + 5 + length]
                if data[i + 2] == ord("k") and body[:1] == b"1":
                    self._qr_function(body)
                elif data[i + 2] == ord("L"):
                    raise PreviewError("GS ( L graphics are not drawn by the preview")
                return 5 + length
            case "V":
                self._cut()
                return 4 if data[i + 2] in (65, 66) else 3
            case "v" if data[i + 2] == ord("0"):
                return self._raster(data, i)
            case "B":
                return 3  # reverse printing: not used on our tickets
            case _:
                raise PreviewError(f"GS {cmd:#04x} at byte {i} is not drawn by the preview")

    def image(self) -> Image.Image:
        """The paper printed so far, cut below the last thing printed."""
        self._flush()
        return self.paper.image.crop((0, 0, self.paper.image.width, self.paper.y + 8))


def render_preview(data: bytes, spec: Printer) -> Image.Image:
    """The ticket that `data` prints on this printer, as a grayscale image (1 px = 1 dot)."""
    return VirtualPrinter(spec).feed(data).image()


def save_preview(data: bytes, path: str | Path, spec: Printer) -> Path:
    """Render and write the preview PNG; returns the path written."""
    path = Path(path)
    render_preview(data, spec).save(path, format="PNG", optimize=True)
    return path
