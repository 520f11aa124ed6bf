"""The kiosk's thermal printer: the one module that imports python-escpos (lazily).

A ticket layout is rendered to ESC/POS bytes first (on an escpos `Dummy` with the printer's
capability profile), then handed to the real printer in one write, so a layout problem never
leaves half a ticket in the printer. Paper status is asked best effort with a short, bounded
wait: some printers never answer, and Dummy/File printers cannot.

    printer = TicketPrinter.from_inventory(site.devices["kiosk-1"].printer)
    printer.print_ticket(ticket_layout(site, info, "id"))   # raises PaperOut, PrinterOffline...
"""

from __future__ import annotations

import contextlib
import functools
import logging
import re
import textwrap
import threading
from typing import Any

from kiosk.errors import KioskConfigError, PaperOut, PrinterOffline, PrintFailed
from kiosk.ticket import Block, Cut, Feed, Field, Logo, Number, Qr, Rule, Text
from protocol.site import Printer

log = logging.getLogger("mpp.kiosk")

# Printable width in dots (203 dpi heads) and characters of font A, per paper width.
PAPER_DOTS = {80: 576, 58: 384}
PAPER_COLUMNS = {80: 48, 58: 32}
LOGO_MAX_HEIGHT = 160
NUMBER_MAX_SCALE = 6
STATUS_VALUES = ("ok", "paper_low", "paper_out", "offline", "unknown")
FIELD_INDENT = 2  # a value moved under its label starts this many columns in
# Spaces a line must not break at: a number and its unit or time zone ('3 jam', '40 menit',
# '11:15 WITA', '7 Desember'), and a sign or currency and its number ('± 40', 'Rp 30.000').
_GLUE = re.compile(r"(?<=\d) (?=[^\W\d])|(?<=\bRp) (?=\d)|(?<=±) (?=\d)")
_NBSP = "\u00a0"


def wrap(text: str, columns: int) -> list[str]:
    """`text` in lines of at most `columns` characters, broken only at spaces (never at a
    hyphen: 'KTP-el' stays whole) and never between a number and its unit."""
    glued = _GLUE.sub(_NBSP, text)
    lines = textwrap.wrap(glued, columns, break_on_hyphens=False)
    return [line.replace(_NBSP, " ") for line in lines]


def field_lines(label: str, value: str, columns: int) -> list[str]:
    """'Label: value' on one line when it fits, else the label, then the value indented."""
    one = f"{label}: {value}"
    if len(one) <= columns:
        return [one]
    indent = " " * FIELD_INDENT
    return [*wrap(f"{label}:", columns), *(indent + v for v in wrap(value, columns - len(indent)))]


def _escpos() -> Any:
    """The escpos package, imported on first use (kiosk imports without it)."""
    try:
        import escpos.printer
    except ImportError as exc:  # pragma: no cover - a dependency of the package
        raise KioskConfigError(
            f"python-escpos is not installed ({exc}); pip install python-escpos"
        ) from None
    return escpos


def check_profile(name: str) -> None:
    """Raise KioskConfigError unless `name` is in escpos's printer capability database."""
    from escpos.capabilities import CAPABILITIES

    profiles = CAPABILITIES["profiles"]
    if name not in profiles:
        raise KioskConfigError(
            f"printer profile {name!r} is not in python-escpos's capability database; "
            f"use your model's name, e.g. 'TM-T20II', or 'default' ({len(profiles)} known)"
        )


def build_escpos(spec: Printer) -> Any:
    """The escpos printer object for an inventory [printer] entry (connects on first use)."""
    escpos = _escpos()
    check_profile(spec.profile)
    classes = escpos.printer
    match spec.connection:
        case "usb":
            if not classes.Usb.is_usable():
                raise KioskConfigError(
                    "a usb printer needs pyusb: pip install 'python-escpos[usb]' (the 'pi' "
                    "extra) and a udev rule giving the kiosk user access to the printer"
                )
            return classes.Usb(
                spec.vendor_id,
                spec.product_id,
                timeout=int(spec.timeout_s * 1000),
                profile=spec.profile,
            )
        case "network":
            return _network_class()(
                spec.host, spec.port, timeout=spec.timeout_s, profile=spec.profile
            )
        case "serial":
            if not classes.Serial.is_usable():
                raise KioskConfigError(
                    "a serial printer needs pyserial: pip install 'python-escpos[serial]'"
                )
            return classes.Serial(
                spec.device, baudrate=spec.baudrate, timeout=spec.timeout_s, profile=spec.profile
            )
        case "file":
            return classes.File(spec.path, profile=spec.profile)
        case _:
            return classes.Dummy(profile=spec.profile)


@functools.cache
def _network_class() -> Any:
    """escpos's Network printer, closing its socket when connecting fails (3.1 leaks it)."""
    import socket

    from escpos.exceptions import DeviceNotFoundError
    from escpos.printer import Network

    class ClosingNetwork(Network):  # type: ignore[misc]
        def open(self, raise_not_found: bool = True) -> None:
            if self._device:
                self.close()
            try:
                self.device = socket.create_connection((self.host, self.port), self.timeout)
            except OSError as exc:
                self.device = None
                if raise_not_found:
                    raise DeviceNotFoundError(f"cannot connect to {self.host}: {exc}") from None

    return ClosingNetwork


def columns_for(spec: Printer) -> int:
    """Characters per line of font A: the paper's, or fewer if the profile says so."""
    columns = PAPER_COLUMNS[spec.width_mm]
    with contextlib.suppress(Exception):
        from escpos.capabilities import get_profile

        profile_columns = get_profile(spec.profile).get_columns("a")
        if isinstance(profile_columns, int) and profile_columns > 0:
            columns = min(columns, profile_columns)
    return columns


def render(layout: list[Block], spec: Printer) -> bytes:
    """ESC/POS bytes of a ticket layout for this printer's profile and paper width."""
    from escpos.constants import QR_ECLEVEL_M
    from escpos.printer import Dummy

    out = Dummy(profile=spec.profile)
    columns = columns_for(spec)
    dots = PAPER_DOTS[spec.width_mm]
    native_qr = out.profile.supports("qrCode")
    out.hw("INIT")
    for block in layout:
        match block:
            case Text():
                width = max(8, columns // block.size)
                lines = wrap(block.text, width)
                big = block.size == 2
                out.set(
                    align=block.align,
                    bold=block.bold,
                    normal_textsize=not big,
                    double_width=big,
                    double_height=big,
                )
                for line in lines:
                    out.textln(line)
                out.set(bold=False, normal_textsize=True)
            case Field():
                out.set(align="left")
                for line in field_lines(block.label, block.value, columns):
                    out.textln(line)
            case Number():
                scale = number_scale(block.text, columns)
                out.set(align="center", bold=True, custom_size=True, width=scale, height=scale)
                out.textln(block.text)
                out.set(bold=False, normal_textsize=True)
            case Qr():
                out.set(align="center")
                size = 6 if spec.width_mm == 80 else 5
                out.qr(block.payload, ec=QR_ECLEVEL_M, size=size, native=native_qr)
                out.ln()
            case Logo():
                image = _logo_image(block, dots)
                if image is not None:
                    out.set(align="center")
                    out.image(image, impl="bitImageRaster")
            case Rule():
                out.set(align="left")
                out.textln("-" * columns)
            case Feed():
                out.ln(block.lines)
            case Cut():
                out.cut()
    return out.output


def number_scale(number: str, columns: int) -> int:
    """How many times font A's size the ticket number is printed: as large as the paper
    allows (at most NUMBER_MAX_SCALE), always on one line."""
    return max(1, min(NUMBER_MAX_SCALE, columns // max(1, len(number))))


def _logo_image(block: Logo, dots: int) -> Any:
    """The logo scaled to fit the paper, or None (logged) when it cannot be read."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(block.path) as source:
            image = source.convert("RGBA")
    except (OSError, UnidentifiedImageError) as exc:
        log.warning("ticket logo skipped", extra={"path": str(block.path), "error": str(exc)})
        return None
    white = Image.new("RGBA", image.size, "white")
    image = Image.alpha_composite(white, image).convert("L")
    image.thumbnail((dots, LOGO_MAX_HEIGHT))
    return image


def parse_paper_status(reply: bytes) -> str:
    """The paper state from a DLE EOT 4 answer; 'unknown' when the printer said nothing."""
    from escpos.constants import RT_MASK_LOWPAPER, RT_MASK_NOPAPER

    if not reply:
        return "unknown"
    byte = reply[0]
    if byte & RT_MASK_NOPAPER == RT_MASK_NOPAPER:
        return "paper_out"
    if byte & RT_MASK_LOWPAPER == RT_MASK_LOWPAPER:
        return "paper_low"
    return "ok"


class TicketPrinter:
    """A kiosk's thermal printer: prints ticket layouts, asks for its paper state.

    `device` is any python-escpos printer (Usb, Network, Serial, File; Dummy in tests).
    """

    def __init__(self, device: Any, spec: Printer, *, status_timeout: float = 0.5) -> None:
        self.device = device
        self.spec = spec
        self.status_timeout = status_timeout
        self.last_status = "unknown"
        self._answers: bool | None = None  # does this printer answer status queries at all?
        self._lock = threading.Lock()
        escpos = _escpos()
        self._not_found = escpos.exceptions.DeviceNotFoundError
        self._escpos_error = escpos.exceptions.Error
        base_read = escpos.escpos.Escpos._read
        self.can_query = type(device)._read is not base_read

    @classmethod
    def from_inventory(cls, spec: Printer, **kwargs: Any) -> TicketPrinter:
        """The printer an inventory entry describes."""
        return cls(build_escpos(spec), spec, **kwargs)

    # -- printing ---------------------------------------------------------------------
    def print_ticket(self, layout: list[Block]) -> str:
        """Print one ticket; returns the paper state after printing ('ok', 'paper_low'...).

        Raises PaperOut (before sending anything, when the printer says so), PrinterOffline
        (also when a printer that answers status queries stops answering around the ticket:
        its bytes may sit in a dead connection) or PrintFailed.
        """
        data = render(layout, self.spec)
        if self._answers is not False:
            before = self.status()
            if before == "paper_out":
                raise PaperOut(f"{self._where()}: out of paper; load a new roll")
            if before == "offline":
                raise PrinterOffline(f"{self._where()}: not reachable; check power and cable")
        self.send(data)
        after = self.status() if self._answers else "unknown"
        if after == "paper_out":
            raise PaperOut(f"{self._where()}: paper ran out while printing; load a new roll")
        if after == "offline":
            raise PrinterOffline(
                f"{self._where()}: stopped answering when the ticket was sent (it may not have "
                "printed); check power and cable"
            )
        if after == "unknown" and self._answers is not True:
            after = "ok"  # it took the bytes; no better knowledge is available
        self.last_status = after
        return after

    def send(self, data: bytes) -> None:
        """Hand raw ESC/POS bytes to the printer in one write."""
        with self._lock:
            try:
                self.device._raw(data)
                flush = getattr(self.device, "flush", None)
                if callable(flush):
                    flush()
            except self._not_found as exc:
                self._reset()
                self.last_status = "offline"
                raise PrinterOffline(f"{self._where()}: cannot connect: {_one_line(exc)}") from None
            except (RuntimeError, AssertionError) as exc:
                self._reset()
                self.last_status = "offline"
                raise PrinterOffline(f"{self._where()}: {_one_line(exc)}") from None
            except (OSError, ValueError, self._escpos_error) as exc:
                self._reset()
                self.last_status = "error"
                raise PrintFailed(
                    f"{self._where()}: printing failed part-way: {_one_line(exc)}; "
                    "check the cable and the paper path"
                ) from None
            except Exception as exc:
                # A driver failing half-way may leave the printer inside a command: drop the
                # connection, or the next ticket would come out as garbage.
                self._reset()
                self.last_status = "error"
                raise PrintFailed(
                    f"{self._where()}: the printer driver failed part-way "
                    f"({type(exc).__name__}: {_one_line(exc)}); check the printer software"
                ) from exc

    # -- status -----------------------------------------------------------------------
    def status(self) -> str:
        """Paper state, asked with a bounded wait: ok, paper_low, paper_out, offline, unknown."""
        if not self.can_query:
            return "unknown"
        answer: list[str] = []

        def ask() -> None:
            from escpos.constants import RT_STATUS_PAPER

            with self._lock:
                # A connection the printer dropped (switched off and on again) fails once;
                # then one fresh connection is tried.
                for last_try in (False, True):
                    try:
                        connection = self.device.device
                        _bound_reads(connection, self.status_timeout)
                        try:
                            reply = self.device.query_status(RT_STATUS_PAPER)
                        finally:
                            _bound_reads(connection, self.spec.timeout_s)
                    except self._not_found:
                        self._reset()
                        answer.append("offline")
                    except TimeoutError:
                        if self._answers:
                            self._reset()  # what it swallows now must not come out later
                        answer.append("unknown")  # it did not answer in time
                    except (NotImplementedError, self._escpos_error):
                        answer.append("unknown")  # it cannot be asked
                    except OSError:
                        self._reset()  # the connection dropped: reconnect on next use
                        if not last_try:
                            continue
                        answer.append("unknown")
                    except (RuntimeError, AssertionError):
                        self._reset()  # a missing driver, or a connection escpos gave up on
                        answer.append("offline")
                    else:
                        if not reply and self._answers and not last_try:
                            self._reset()  # the printer closed the connection
                            continue
                        answer.append(parse_paper_status(reply))
                    return

        thread = threading.Thread(target=ask, name="printer-status", daemon=True)
        thread.start()
        thread.join(self.status_timeout + 0.1)
        state = answer[0] if answer else "unknown"
        if state in ("ok", "paper_low", "paper_out"):
            self._answers = True
        elif state == "unknown" and self._answers is None:
            self._answers = False
        elif state == "unknown" and self._answers:
            # It has always answered and does not now: switched off, unplugged or hung.
            state = "offline"
        if state != "unknown":
            self.last_status = state
        return state

    def close(self) -> None:
        """Release the connection (USB handle, socket, file)."""
        with self._lock:
            self._reset()

    def _reset(self) -> None:
        # After a failure escpos leaves the device as None (no reconnect): force a fresh open.
        with contextlib.suppress(Exception):
            self.device.close()
        with contextlib.suppress(Exception):
            self.device.device = False

    def _where(self) -> str:
        spec = self.spec
        target = {
            "usb": f"usb {spec.vendor_id or 0:04x}:{spec.product_id or 0:04x}",
            "network": f"{spec.host}:{spec.port}",
            "serial": f"{spec.device}",
            "file": f"{spec.path}",
            "dummy": "dummy",
        }[spec.connection]
        return f"printer {target} ({spec.profile})"


def _bound_reads(connection: Any, seconds: float) -> None:
    """Limit how long one read from the printer connection may block."""
    if connection is None:
        return
    if hasattr(connection, "settimeout"):  # socket (Network)
        connection.settimeout(seconds)
    elif hasattr(connection, "default_timeout"):  # pyusb device (Usb), milliseconds
        connection.default_timeout = int(seconds * 1000)
    elif hasattr(connection, "timeout"):  # pyserial (Serial)
        connection.timeout = seconds


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return " ".join(text.split())
