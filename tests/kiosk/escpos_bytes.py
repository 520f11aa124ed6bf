"""A small reader of the ESC/POS bytes our kiosk produces (no maintained decoder exists).

It understands exactly the commands python-escpos emits for our tickets and fails on any
other control byte, so a test notices when the printer is sent something unexpected.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ESC, GS, DLE = 0x1B, 0x1D, 0x10
CODEPAGES = {0: "cp437", 1: "cp932", 2: "cp850", 3: "cp860", 16: "cp1252", 19: "cp858"}


@dataclass(frozen=True)
class Line:
    """One printed line of text and the style it was printed in."""

    text: str
    width: int
    height: int
    bold: bool
    align: int  # 0 left, 1 centre, 2 right


@dataclass
class Printed:
    """What a stream of ESC/POS bytes makes the printer do."""

    lines: list[Line] = field(default_factory=list)
    qr_payloads: list[str] = field(default_factory=list)
    qr_prints: int = 0
    cuts: list[int] = field(default_factory=list)  # byte offsets of GS V
    images: list[tuple[int, int]] = field(default_factory=list)
    rasters: list[bytes] = field(default_factory=list)  # each image's bits, row by row
    status_requests: int = 0
    inits: int = 0

    def texts(self) -> list[str]:
        """The text of every printed line."""
        return [line.text for line in self.lines]

    def find(self, fragment: str) -> Line:
        """The first line containing `fragment` (AssertionError if none)."""
        for line in self.lines:
            if fragment in line.text:
                return line
        raise AssertionError(f"{fragment!r} not printed; lines: {self.texts()}")


def parse(data: bytes) -> Printed:
    """Decode the bytes; raises AssertionError on a command it does not know."""
    out = Printed()
    width = height = 1
    bold = False
    align = 0
    codec = "cp437"
    text = bytearray()
    i = 0

    def flush() -> None:
        out.lines.append(Line(text.decode(codec), width, height, bold, align))
        text.clear()

    while i < len(data):
        byte = data[i]
        if byte == ESC:
            cmd = data[i + 1]
            arg = data[i + 2] if i + 2 < len(data) else 0
            if cmd == ord("@"):
                out.inits += 1
                width = height = 1
                bold, align = False, 0
                i += 2
                continue
            if cmd == ord("!"):
                width = 2 if arg & 0x20 else 1
                height = 2 if arg & 0x10 else 1
                bold = bool(arg & 0x08)
            elif cmd == ord("E"):
                bold = bool(arg)
            elif cmd == ord("a"):
                align = arg
            elif cmd == ord("t"):
                assert arg in CODEPAGES, f"code page {arg} not known to the test reader"
                codec = CODEPAGES[arg]
            elif cmd == ord("d"):
                if text:
                    flush()
            elif cmd in (ord("-"), ord("M"), ord("3"), ord("G"), ord("{")):
                pass
            else:
                raise AssertionError(f"unknown ESC {cmd:#04x} at byte {i}")
            i += 3
        elif byte == GS:
            cmd = data[i + 1]
            if cmd == ord("!"):
                arg = data[i + 2]
                width, height = (arg >> 4) + 1, (arg & 0x0F) + 1
                i += 3
            elif cmd == ord("(") and data[i + 2] in (ord("k"), ord("L")):
                length = data[i + 3] + 256 * data[i + 4]
                body = data[i + 5 : i + 5 + length]
                if data[i + 2] == ord("k") and body[0] == ord("1"):
                    fn = body[1]
                    if fn == 80:  # store the symbol data: cn fn m data
                        out.qr_payloads.append(body[3:].decode("utf-8"))
                    elif fn == 81:
                        out.qr_prints += 1
                i += 5 + length
            elif cmd == ord("V"):
                out.cuts.append(i)
                i += 4 if data[i + 2] in (65, 66) else 3
            elif cmd == ord("v") and data[i + 2] == ord("0"):
                x = data[i + 4] + 256 * data[i + 5]
                y = data[i + 6] + 256 * data[i + 7]
                out.images.append((x * 8, y))
                out.rasters.append(bytes(data[i + 8 : i + 8 + x * y]))
                i += 8 + x * y
            elif cmd == ord("B"):
                i += 3
            else:
                raise AssertionError(f"unknown GS {cmd:#04x} at byte {i}")
        elif byte == DLE and data[i + 1] == 0x04:
            out.status_requests += 1
            i += 3
        elif byte == 0x0A:
            flush()
            i += 1
        elif byte < 0x20:
            raise AssertionError(f"unexpected control byte {byte:#04x} at {i}")
        else:
            text.append(byte)
            i += 1
    if text:
        flush()
    return out
