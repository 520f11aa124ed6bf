"""The demo's devices: the real kiosk and caller-box code on simulated hardware.

Each device gets its own gpiozero `MockFactory`, so a press in the demo is exactly a press on
a Pi (`pin.drive_low()`), through the same panel, debounce and app code. Kiosk printers write
ESC/POS bytes to a file (python-escpos `File`) and, for people to look at, a PNG of the ticket.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from caller.box import CallerBox
from caller.buttons import CallerPanel
from caller.lcd import FakeCharDisplay
from kiosk.app import KioskApp, offered_services
from kiosk.buttons import KioskPanel
from kiosk.preview import save_preview
from kiosk.printer import TicketPrinter
from kiosk.ticket import Block, Number, Qr
from protocol.mqtt import Bus
from protocol.site import CallerDevice, KioskDevice, Pin, Site

log = logging.getLogger("mpp.demo")
PRESS_S = 0.05  # how long a simulated finger holds a button


class PreviewPrinter(TicketPrinter):
    """A file printer that also saves each ticket as a PNG (what the citizen would hold),
    drawn from the very bytes the printer was sent; `pages` maps each PNG's name to the
    citizen's ticket page its QR code opens."""

    def __init__(self, *args: Any, png_dir: Path, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.png_dir = png_dir
        self._number = "ticket"
        self._page: str | None = None
        self.pages: dict[str, str] = {}
        png_dir.mkdir(parents=True, exist_ok=True)

    def print_ticket(self, layout: list[Block]) -> str:
        """Print as the real printer does (the PNG is drawn in `send`)."""
        self._number = next((b.text for b in layout if isinstance(b, Number)), "ticket")
        self._page = next((b.payload for b in layout if isinstance(b, Qr)), None)
        return super().print_ticket(layout)

    def send(self, data: bytes) -> None:
        """Send the bytes to the file printer, then draw those bytes to a PNG."""
        super().send(data)
        path = self.png_dir / f"{time.strftime('%H%M%S')}-{self._number}.png"
        if self._page is not None:
            self.pages[path.name] = self._page
        save_preview(data, path, self.spec)


def _press(factory: Any, pin: Pin) -> None:
    mock = factory.pin(pin)
    mock.drive_low()
    time.sleep(PRESS_S)
    mock.drive_high()


class DemoKiosk:
    """A kiosk: buttons on mock pins, the touch menu's choice as a direct call."""

    def __init__(self, site: Site, device_id: str, tickets: Path) -> None:
        from gpiozero.pins.mock import MockFactory

        spec = site.devices[device_id]
        assert isinstance(spec, KioskDevice) and spec.printer is not None
        self.device_id, self.spec = device_id, spec
        self.factory = MockFactory()
        self.bus = Bus.for_device(site, device_id)
        self.printer = PreviewPrinter.from_inventory(spec.printer, png_dir=tickets)
        self.panel = KioskPanel(spec, pin_factory=self.factory, device_id=device_id)
        self.app = KioskApp(site, device_id, self.bus, self.printer, panel=self.panel)
        self.services = offered_services(site, spec)

    def start(self) -> DemoKiosk:
        """Connect and get ready for presses."""
        self.app.start(wait_connected=10)
        return self

    def press(self, service: str) -> str:
        """A citizen chooses `service`: its GPIO button if it has one, else the touch menu."""
        pin = self.spec.buttons.get(service)
        if pin is None:
            return self.app.press(service)
        _press(self.factory, pin)
        return "pressed"

    def stop(self) -> None:
        """Disconnect and release the mock pins."""
        self.app.stop()
        self.printer.close()
        self.panel.close()


class DemoCaller:
    """A caller box with its rating pad on mock pins and a recording character display."""

    def __init__(self, site: Site, device_id: str) -> None:
        from gpiozero.pins.mock import MockFactory

        spec = site.devices[device_id]
        assert isinstance(spec, CallerDevice)
        self.device_id, self.spec, self.counter = device_id, spec, spec.counter
        self.factory = MockFactory()
        self.bus = Bus.for_device(site, device_id)
        self.lcd = FakeCharDisplay(
            spec.lcd.cols if spec.lcd else 16, spec.lcd.rows if spec.lcd else 2
        )
        self.panel = CallerPanel(spec, device_id, pin_factory=self.factory)
        self.box = CallerBox(
            site,
            device_id,
            self.bus,
            panel=self.panel,
            display=self.lcd,
            officer=f"Petugas {spec.counter}",
        )

    def start(self) -> DemoCaller:
        """Connect; the box shows its counter's retained state."""
        self.box.start()
        self.bus.start(wait=10)
        return self

    def press(self, button: str) -> bool:
        """Press one of the box's buttons (next, recall, skip, transfer, open_close, or a
        rating: very_satisfied ... very_dissatisfied) on its mock pin."""
        pin = getattr(self.spec.buttons, button, None)
        if pin is None and self.spec.rating is not None:
            pin = getattr(self.spec.rating, button, None)
        if pin is None:
            return False
        _press(self.factory, pin)
        return True

    @property
    def is_open(self) -> bool:
        """Whether the hub has this counter open."""
        state = self.box.state
        return bool(state and state.open)

    def stop(self) -> None:
        """Disconnect and release the mock pins."""
        self.box.close()
        self.bus.stop()
        self.panel.close()
