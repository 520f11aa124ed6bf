"""Kiosk test helpers: MockFactory pins, escpos printers that record, stall or fail, a network
printer on loopback, and a factory for running kiosks against the real broker."""

from __future__ import annotations

import errno
import socket
import sqlite3
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from escpos.printer import Dummy
from gpiozero.pins.mock import MockFactory

from kiosk.app import KioskApp
from kiosk.buttons import KioskPanel
from kiosk.printer import TicketPrinter
from protocol.mqtt import Bus
from protocol.site import KioskDevice, Site


def press(pins: MockFactory, pin: int) -> None:
    """A citizen presses and releases the button on `pin` (a separate press: `make_kiosk`'s
    kiosks have no bounce window unless a test sets one, with a clock it moves)."""
    pins.pin(pin).drive_low()
    pins.pin(pin).drive_high()


def ticket_rows(database: Any) -> list[dict[str, Any]]:
    """Today's tickets as the hub stored them (read-only, from the hub's SQLite file)."""
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5)
    conn.row_factory = sqlite3.Row
    try:
        rows = conn.execute(
            "SELECT id, label, service, status, printed, priority, source FROM tickets ORDER BY id"
        ).fetchall()
    finally:
        conn.close()
    return [dict(row) for row in rows]


def request_rows(database: Any) -> dict[str, dict[str, Any]]:
    """The hub's log of applied requests, by request id (read-only)."""
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5)
    conn.row_factory = sqlite3.Row
    try:
        rows = conn.execute("SELECT device, request_id, kind, reply FROM requests").fetchall()
    finally:
        conn.close()
    return {row["request_id"]: dict(row) for row in rows}


class SlowPrinter(Dummy):
    """An escpos Dummy that holds each write until released (a ticket being printed)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.release = threading.Event()
        self.writing = threading.Event()

    def _raw(self, msg: bytes) -> None:
        self.writing.set()
        self.release.wait(10)
        super()._raw(msg)


class JammedPrinter(Dummy):
    """An escpos printer whose connection fails on write, like a USB cable pulled mid-ticket."""

    def __init__(self, *args: Any, before_fail: Callable[[], None] | None = None, **kw: Any):
        super().__init__(*args, **kw)
        self.attempts = 0
        self.before_fail = before_fail

    def _raw(self, msg: bytes) -> None:
        self.attempts += 1
        if self.before_fail is not None:
            self.before_fail()
        raise OSError(errno.EIO, "Input/output error")


class FlakyPrinter(Dummy):
    """An escpos printer whose driver fails once in an unexpected way, then works."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.failed = False

    def _raw(self, msg: bytes) -> None:
        if not self.failed:
            self.failed = True
            raise KeyError("driver bug")
        super()._raw(msg)


class PrinterServer:
    """A network thermal printer on loopback: records bytes, answers DLE EOT 4 with `status`
    (or never answers when `status` is None)."""

    def __init__(self, status: bytes | None = b"\x12") -> None:
        self.status = status
        self.received = bytearray()
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(4)
        self._sock.settimeout(0.1)
        self.port = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(0.1)
                while not self._stop.is_set():
                    try:
                        chunk = conn.recv(65536)
                    except TimeoutError:
                        continue
                    except OSError:
                        break
                    if not chunk:
                        break
                    self.received += chunk
                    if self.status is not None:
                        for _ in range(chunk.count(b"\x10\x04\x04")):
                            conn.sendall(self.status)

    def close(self) -> None:
        self._stop.set()
        self._sock.close()
        self._thread.join(2)


@pytest.fixture
def pins() -> Iterator[MockFactory]:
    """A fresh gpiozero MockFactory for this test."""
    factory = MockFactory()
    yield factory
    factory.close()


@pytest.fixture
def printer_server() -> Iterator[Callable[..., PrinterServer]]:
    """Factory of loopback network printers, closed after the test."""
    made: list[PrinterServer] = []

    def make(status: bytes | None = b"\x12") -> PrinterServer:
        server = PrinterServer(status)
        made.append(server)
        return server

    yield make
    for server in made:
        server.close()


def dummy_printer(site: Site, device: str, escpos: Any = None) -> TicketPrinter:
    """A TicketPrinter on an escpos Dummy with the device's own printer profile and paper."""
    spec = site.devices[device]
    assert isinstance(spec, KioskDevice) and spec.printer is not None
    return TicketPrinter(escpos or Dummy(profile=spec.printer.profile), spec.printer)


@pytest.fixture
def make_kiosk(site: Site, pins: MockFactory) -> Iterator[Callable[..., KioskApp]]:
    """Factory: a started kiosk app of an inventory device, with MockFactory pins and an escpos
    Dummy printer unless given; connected to the test broker."""
    apps: list[KioskApp] = []
    extras: list[Any] = []

    def make(
        device: str = "kiosk-3",
        *,
        printer: TicketPrinter | None = None,
        menu: Any = None,
        on_site: Site | None = None,
        bus: Bus | None = None,
        connect: bool = True,
        **kwargs: Any,
    ) -> KioskApp:
        the_site = on_site or site
        spec = the_site.devices[device]
        assert isinstance(spec, KioskDevice)
        panel = KioskPanel(spec, pin_factory=pins, device_id=device)
        extras.append(panel)
        kwargs.setdefault("request_timeout", 2.0)
        kwargs.setdefault("lockout_s", 0.0)
        kwargs.setdefault("bounce_s", 0.0)
        app = KioskApp(
            the_site,
            device,
            bus or Bus.for_device(the_site, device),
            printer or dummy_printer(the_site, device),
            panel=panel,
            menu=menu,
            **kwargs,
        )
        apps.append(app)
        app.start(wait_connected=10 if connect else None)
        if connect:
            assert app.bus.connected, f"{device} could not connect to the test broker"
        return app

    yield make
    for app in apps:
        app.stop()
    for extra in extras:
        extra.close()
