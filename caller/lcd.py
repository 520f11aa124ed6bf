"""The caller box's small character display: an interface, the RPLCD (I2C) driver and a fake.

The box writes whole lines; what to show is decided in `caller.screen`. RPLCD is imported
only inside `RplcdDisplay`, so the package imports on machines without it.

    display = FakeCharDisplay(cols=16, rows=2)
    display.write(["A012 -> Loket 3", "Menunggu: 5"])
    display.lines        # ['A012 -> Loket 3 ', 'Menunggu: 5     ']
"""

from __future__ import annotations

import logging
import threading
import unicodedata
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from protocol.errors import MppError
from protocol.site import Lcd

log = logging.getLogger("mpp.caller")


class LcdError(MppError, OSError):
    """The character display cannot be reached or driven (wiring, address, missing driver)."""


def fit(text: str, cols: int) -> str:
    """`text` as the display can show it: ASCII only, cut or padded to exactly `cols`."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    plain = "".join(ch if ch.isprintable() else " " for ch in plain)
    return plain[:cols].ljust(cols)


class CharDisplay(Protocol):
    """A character display of `rows` lines of `cols` characters."""

    cols: int
    rows: int

    def write(self, lines: Sequence[str]) -> None:
        """Show `lines` (missing lines are blank, extra ones are an error)."""

    def close(self) -> None:
        """Blank the display and release it."""


def _checked(lines: Sequence[str], cols: int, rows: int) -> list[str]:
    if len(lines) > rows:
        raise ValueError(f"{len(lines)} lines given for a display of {rows} rows")
    return [fit(line, cols) for line in [*lines, *[""] * (rows - len(lines))]]


class FakeCharDisplay:
    """A display for tests and for boxes without one: `lines` holds what would be shown."""

    def __init__(self, cols: int = 16, rows: int = 2) -> None:
        self.cols, self.rows = cols, rows
        self.lines: list[str] = [" " * cols] * rows
        self.history: list[list[str]] = []
        self.closed = False

    def write(self, lines: Sequence[str]) -> None:
        """Record the lines exactly as a real display would show them."""
        self.lines = _checked(lines, self.cols, self.rows)
        self.history.append(list(self.lines))

    def close(self) -> None:
        """Blank the recorded lines."""
        self.lines = [" " * self.cols] * self.rows
        self.closed = True

    @property
    def text(self) -> str:
        """All lines, trimmed and joined with '|', for readable asserts."""
        return "|".join(line.rstrip() for line in self.lines)


def _rplcd(spec: Lcd) -> Any:
    """A RPLCD CharLCD on the I2C bus, as the inventory describes it."""
    try:
        from RPLCD.i2c import CharLCD
    except ImportError as exc:
        raise LcdError(
            f"cannot drive the I2C display: {exc}; install the caller extra "
            "(pip install 'mpp-antrian[caller]', which brings smbus2) or remove [lcd] from the "
            "device"
        ) from None
    return CharLCD(
        i2c_expander=spec.expander,
        address=spec.address,
        port=spec.port,
        cols=spec.cols,
        rows=spec.rows,
        charmap="A00",
        auto_linebreaks=False,
        expander_params={"gpio_bank": "A"} if spec.expander == "MCP23017" else None,
    )


class RplcdDisplay:
    """An HD44780 display on an I2C backpack, driven by RPLCD.

    `make_lcd` builds the RPLCD object (default: `RPLCD.i2c.CharLCD` from the inventory's
    expander, address, port, cols and rows); errors become LcdError naming the address.
    """

    def __init__(self, spec: Lcd, make_lcd: Callable[[Lcd], Any] = _rplcd) -> None:
        self.spec = spec
        self.cols, self.rows = spec.cols, spec.rows
        self._lock = threading.Lock()
        self._shown: list[str] | None = None
        try:
            self._lcd = make_lcd(spec)
            self._lcd.clear()
        except LcdError:
            raise
        except (OSError, ValueError, RuntimeError) as exc:
            raise LcdError(self._where(exc)) from None

    def _where(self, exc: BaseException) -> str:
        return (
            f"{self.spec.expander} display at I2C bus {self.spec.port}, address "
            f"{self.spec.address:#04x}: {exc}; check wiring and the address (i2cdetect -y "
            f"{self.spec.port})"
        )

    def write(self, lines: Sequence[str]) -> None:
        """Rewrite the lines that changed; an I2C failure raises LcdError."""
        fitted = _checked(lines, self.cols, self.rows)
        with self._lock:
            try:
                for row, line in enumerate(fitted):
                    if self._shown is not None and self._shown[row] == line:
                        continue
                    self._lcd.cursor_pos = (row, 0)
                    self._lcd.write_string(line)
            except OSError as exc:
                self._shown = None  # unknown now: rewrite everything next time
                raise LcdError(self._where(exc)) from None
            self._shown = fitted

    def close(self) -> None:
        """Clear the display and release the bus."""
        with self._lock:
            try:
                self._lcd.close(clear=True)
            except OSError as exc:
                log.warning("display close failed", extra={"error": str(exc)})
