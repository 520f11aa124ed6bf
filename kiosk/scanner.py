"""The USB 2D barcode scanner for booking check-in: the one module that imports python-evdev.

A scanner in keyboard mode types what it read, then Enter. `KeyDecoder` (pure) turns key
events into that text, the US layout with Shift; `parse_scan` finds the booking in it (the QR
carries the booking's page, `https://region/r/<site>/<CODE>`, or a bare code); `Scanner` reads
the device with evdev on a thread of its own, grabbed, so its keystrokes go nowhere else.

    decoder = KeyDecoder()
    for code, value in events: line = decoder.feed(code, value)   # str once Enter comes
    parse_scan("https://antrian.example/r/mpp-bjb/K7P3M9QX")  # ('mpp-bjb', 'K7P3M9QX')
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
from collections.abc import Callable

from protocol import messages as m

log = logging.getLogger("mpp.kiosk.scanner")

# Linux input event codes (linux/input-event-codes.h), the US keyboard layout a scanner types in.
KEY_ENTER, KEY_KPENTER, KEY_LEFTSHIFT, KEY_RIGHTSHIFT = 28, 96, 42, 54
_ROWS = {
    2: "1!", 3: "2@", 4: "3#", 5: "4$", 6: "5%", 7: "6^", 8: "7&", 9: "8*", 10: "9(", 11: "0)",
    12: "-_", 13: "=+", 26: "[{", 27: "]}", 39: ";:", 40: "'\"", 41: "`~", 43: "\\|",
    51: ",<", 52: ".>", 53: "/?", 57: "  ",
}  # fmt: skip
_LETTERS = dict(zip((16, 17, 18, 19, 20, 21, 22, 23, 24, 25,   # q w e r t y u i o p
                     30, 31, 32, 33, 34, 35, 36, 37, 38,       # a s d f g h j k l
                     44, 45, 46, 47, 48, 49, 50),              # z x c v b n m
                    "qwertyuiopasdfghjklzxcvbnm", strict=True))  # fmt: skip
MAX_LINE = 300  # a scan longer than this is noise, not a booking
CODE_RE = re.compile(rf"[{m.BOOKING_CODE_ALPHABET}]{{8}}")
URL_RE = re.compile(rf"/r/([a-z0-9][a-z0-9_-]{{0,39}})/([{m.BOOKING_CODE_ALPHABET}]{{8}})/?$")


def key_char(code: int, shift: bool) -> str | None:
    """The character a key types on a US layout, or None (not a typing key)."""
    if code in _LETTERS:
        letter = _LETTERS[code]
        return letter.upper() if shift else letter
    pair = _ROWS.get(code)
    return None if pair is None else pair[1 if shift else 0]


class KeyDecoder:
    """Key events (code, value: 1 down, 0 up, 2 repeat) in, one scanned line out per Enter."""

    def __init__(self) -> None:
        self._shift: set[int] = set()
        self._line: list[str] = []

    def feed(self, code: int, value: int) -> str | None:
        """Take one key event; the line typed so far when it is Enter, else None."""
        if code in (KEY_LEFTSHIFT, KEY_RIGHTSHIFT):
            (self._shift.add if value else self._shift.discard)(code)
            return None
        if value != 1:
            return None
        if code in (KEY_ENTER, KEY_KPENTER):
            line, self._line = "".join(self._line), []
            return line
        char = key_char(code, bool(self._shift))
        if char is not None and len(self._line) < MAX_LINE:
            self._line.append(char)
        return None


def parse_scan(text: str) -> tuple[str | None, str] | None:
    """(site named by the QR or None, booking code) from what was scanned or typed; None when
    it is no booking (the citizen is told so)."""
    text = text.strip()
    found = URL_RE.search(text)
    if found:
        return found[1], found[2]
    bare = re.sub(r"[\s-]", "", text).upper()
    return (None, bare) if CODE_RE.fullmatch(bare) else None


class Scanner:
    """Reads a keyboard-mode scanner (an evdev input device) and calls `on_scan(text)` for
    every line it types. The device may come and go (USB): it is opened again every few
    seconds, with a log line saying why it is not there."""

    def __init__(
        self, path: str, on_scan: Callable[[str], object], *, retry_s: float = 5.0
    ) -> None:
        self.path = path
        self.on_scan = on_scan
        self.retry_s = retry_s
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._device: object | None = None

    def start(self) -> Scanner:
        """Start reading on a thread of its own."""
        self._thread = threading.Thread(target=self._run, name="kiosk-scanner", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop reading (the device is closed)."""
        self._stopping.set()
        device = self._device
        if device is not None:
            with contextlib.suppress(OSError):
                device.close()  # type: ignore[attr-defined]
        if self._thread is not None:
            self._thread.join(2)

    def _run(self) -> None:
        import evdev  # here only: the package imports on machines without the library

        while not self._stopping.is_set():
            try:
                device = evdev.InputDevice(self.path)
            except OSError as exc:
                log.warning(
                    "barcode scanner not available; trying again",
                    extra={"device": self.path, "error": exc.strerror or str(exc)},
                )
                self._stopping.wait(self.retry_s)
                continue
            self._device = device
            decoder = KeyDecoder()
            try:
                device.grab()  # its keystrokes reach us only, not a console or the screen
                log.info("barcode scanner ready", extra={"device": self.path, "name": device.name})
                for event in device.read_loop():
                    if event.type != evdev.ecodes.EV_KEY:
                        continue
                    line = decoder.feed(event.code, event.value)
                    if line:
                        self.on_scan(line)
            except OSError as exc:  # unplugged, or closed by stop()
                if not self._stopping.is_set():
                    log.warning(
                        "barcode scanner lost; trying again",
                        extra={"device": self.path, "error": exc.strerror or str(exc)},
                    )
                    time.sleep(min(1.0, self.retry_s))
            finally:
                self._device = None
                with contextlib.suppress(OSError):
                    device.close()
