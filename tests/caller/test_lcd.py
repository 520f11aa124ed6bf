"""The character display: the recording fake and the RPLCD driver over a memory-backed bus."""

from __future__ import annotations

from typing import Any

import pytest
from RPLCD import common
from RPLCD.lcd import BaseCharLCD

from caller.lcd import FakeCharDisplay, LcdError, RplcdDisplay, fit
from protocol.site import Lcd


class MemoryLCD(BaseCharLCD):
    """RPLCD's own HD44780 logic with the I2C transfers recorded instead of sent."""

    def __init__(self, spec: Lcd, broken: bool = False) -> None:
        self.data_bus_mode = common.LCD_4BITMODE
        self.sent: list[tuple[str, int]] = []
        self.broken = broken
        super().__init__(cols=spec.cols, rows=spec.rows, charmap="A00", auto_linebreaks=False)

    def _init_connection(self) -> None:
        pass

    def _close_connection(self) -> None:
        pass

    def _send_data(self, value: int) -> None:
        if self.broken:
            raise OSError(121, "Remote I/O error")
        self.sent.append(("data", value))

    def _send_instruction(self, value: int) -> None:
        self.sent.append(("instruction", value))

    @property
    def screen(self) -> list[str]:
        return ["".join(map(chr, row)) for row in self._content]


def test_fit_cuts_pads_and_keeps_to_ascii() -> None:
    assert fit("Menunggu: 5", 16) == "Menunggu: 5     "
    assert fit("A012 -> Loket 30 (lantai 2)", 16) == "A012 -> Loket 30"
    assert fit("Pengaduan ± café\t", 16) == "Pengaduan  cafe "


def test_fake_display_records_lines_and_refuses_extra_rows() -> None:
    display = FakeCharDisplay(16, 2)
    display.write(["A012 -> Loket 3"])
    assert display.lines == ["A012 -> Loket 3 ", " " * 16]
    assert display.text == "A012 -> Loket 3|"
    with pytest.raises(ValueError, match="3 lines given for a display of 2 rows"):
        display.write(["a", "b", "c"])
    assert display.text == "A012 -> Loket 3|"


@pytest.mark.parametrize(("cols", "rows"), [(16, 2), (20, 4)])
def test_rplcd_display_shows_the_lines(cols: int, rows: int) -> None:
    made: list[MemoryLCD] = []

    def make(spec: Lcd) -> Any:
        made.append(MemoryLCD(spec))
        return made[-1]

    display = RplcdDisplay(Lcd(cols=cols, rows=rows), make_lcd=make)
    lines = ["A012 -> Loket 3", "Menunggu: 5", "A:3 B:2", "Petugas: Siti"][:rows]
    display.write(lines)
    assert made[0].screen == [line.ljust(cols) for line in lines]
    # Only the line that changed is rewritten, only its changed characters are sent.
    made[0].sent.clear()
    display.write(["A012 -> Loket 3", "Menunggu: 4", *lines[2:]])
    assert [value for kind, value in made[0].sent if kind == "data"] == [ord("4")]
    assert made[0].screen[1] == "Menunggu: 4".ljust(cols)


def test_rplcd_bus_error_becomes_lcd_error_naming_the_address() -> None:
    display = RplcdDisplay(Lcd(address=0x3F), make_lcd=lambda spec: MemoryLCD(spec, broken=True))
    with pytest.raises(LcdError, match=r"PCF8574 display at I2C bus 1, address 0x3f: .*i2cdetect"):
        display.write(["A012"])


def test_rplcd_without_i2c_support_is_a_clear_error() -> None:
    # This machine has no I2C bus (and maybe no smbus2): either way, an error saying what to do.
    with pytest.raises(LcdError) as caught:
        RplcdDisplay(Lcd())
    assert "smbus2" in str(caught.value) or "0x27" in str(caught.value)
