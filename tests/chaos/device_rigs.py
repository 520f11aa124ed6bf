"""Real devices for the device scenarios of the reliability suite (issue 11, scenarios 3-6).

Caller boxes and kiosks run the real app code on gpiozero MockFactory pins (one factory per
device, as each is its own Pi), the lobby display is the real DisplayApp drawing on SDL's
dummy driver with a recording announcer, and each device's bus keeps a timeline of its
connects and disconnects. The invariants are read back from the hub's SQLite file.
"""

from __future__ import annotations

import math
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gpiozero.pins.mock import MockFactory

from caller.box import CallerBox
from caller.buttons import CallerPanel
from caller.lcd import FakeCharDisplay
from display.announcer import RecordingAnnouncer
from display.app import DisplayApp, layout_factory
from display.renderer import Renderer
from display.scene import zone_counters
from display.video import VideoPlan
from kiosk.app import KioskApp
from kiosk.buttons import KioskPanel
from kiosk.printer import TicketPrinter
from protocol.mqtt import Bus
from protocol.site import CallerDevice, KioskDevice, Site
from tests.conftest import EXAMPLE

DUMMY_VIDEO = VideoPlan(("dummy",), fullscreen=False)
SCREEN_SIZE = (1366, 768)
# The example inventory wires every caller box alike.
CALLER_PINS = {"next": 17, "recall": 27, "skip": 22, "transfer": 23, "open_close": 24}
CALL_KINDS = ("called", "recalled", "called_back")


class Timeline:
    """When a bus connected and lost its broker (time.monotonic()), recorded as it happens."""

    def __init__(self, bus: Bus) -> None:
        self.device = bus.device
        self.events: list[tuple[float, bool]] = []
        self._lock = threading.Lock()
        bus.on_connection_change(self._on_change)

    def _on_change(self, connected: bool) -> None:
        with self._lock:
            self.events.append((time.monotonic(), connected))

    def connects(self, after: float) -> list[float]:
        """Times of the connects at or after `after`."""
        with self._lock:
            return [at for at, up in self.events if up and at >= after]

    def disconnects(self, after: float) -> list[float]:
        """Times of the disconnects at or after `after`."""
        with self._lock:
            return [at for at, up in self.events if not up and at >= after]


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by the nearest-rank method (no interpolation)."""
    ordered = sorted(values)
    assert ordered, "no values"
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


# -- caller boxes ------------------------------------------------------------------------------
@dataclass
class CallerRig:
    """A caller box on its own MockFactory pins, with a recording character display."""

    box: CallerBox
    pins: MockFactory
    panel: CallerPanel
    lcd: FakeCharDisplay
    bus: Bus
    timeline: Timeline
    last_press: dict[str, float] = field(default_factory=dict)

    @property
    def counter(self) -> int:
        """The counter this box calls for."""
        return self.box.counter

    def press(self, button: str, wait_s: float | None = 10.0) -> None:
        """An officer presses `button` as a new press (after its debounce window); waits up
        to `wait_s` for the answer (None: not at all). The outcome lands in `box.recent`."""
        if button in self.last_press:
            since = self.box.clock() - self.last_press[button]
            time.sleep(max(0.0, self.box.debounce_s + 0.01 - since))
        self.last_press[button] = self.box.clock()
        pin = self.pins.pin(CALLER_PINS[button])
        pin.drive_low()
        pin.drive_high()
        if wait_s is not None:
            assert self.box.wait_idle(wait_s), f"{self.bus.device}: {button} unanswered"

    def headline(self) -> str:
        """The display's first line (ticket and counter), once the box was ticked."""
        self.box.tick()
        return self.lcd.lines[0].rstrip()

    def shows(self, text: str) -> bool:
        """Whether the display shows `text` (lines joined by '|') once the box was ticked,
        as the caller process's loop does a few times a second (feedback texts lapse)."""
        self.box.tick()
        return self.lcd.text == text

    def close(self) -> None:
        """Stop the bus, blank the display, release the pins."""
        self.bus.stop()
        self.box.close()
        self.panel.close()
        self.pins.close()


def caller_rig(
    site: Site, device: str, officer: str, bus: Bus | None = None, **box_kw: Any
) -> CallerRig:
    """A started caller box `device` of the inventory (its bus connected, timeline recorded)."""
    spec = site.devices[device]
    assert isinstance(spec, CallerDevice)
    pins = MockFactory()
    bus = bus or Bus.for_device(site, device)
    timeline = Timeline(bus)
    lcd = FakeCharDisplay(spec.lcd.cols if spec.lcd else 16, spec.lcd.rows if spec.lcd else 2)
    panel = CallerPanel(spec, device, pin_factory=pins)
    box_kw.setdefault("debounce_s", 0.05)
    box = CallerBox(site, device, bus, panel=panel, display=lcd, officer=officer, **box_kw)
    box.start()
    bus.start(wait=10)
    return CallerRig(box, pins, panel, lcd, bus, timeline)


# -- kiosks --------------------------------------------------------------------------------------
@dataclass
class KioskRig:
    """A kiosk app on its own MockFactory pins with the printer it was given."""

    app: KioskApp
    pins: MockFactory
    panel: KioskPanel
    printer: TicketPrinter
    timeline: Timeline
    presses: int = 0

    def press(self, service: str) -> None:
        """A citizen presses the service's button, a separate press (later than contact
        bounce after any earlier one); returns at once, the ticket prints on the kiosk's
        worker thread."""
        time.sleep(0.06)
        pin = self.app.spec.buttons[service]
        self.pins.pin(pin).drive_low()
        self.pins.pin(pin).drive_high()
        self.presses += 1

    def close(self) -> None:
        """Finish the ticket in progress, disconnect, release pins and printer."""
        self.app.stop()
        self.panel.close()
        self.printer.close()
        self.pins.close()


def kiosk_rig(site: Site, device: str, printer: TicketPrinter, **app_kw: Any) -> KioskRig:
    """A started kiosk `device` of the inventory printing on `printer`."""
    spec = site.devices[device]
    assert isinstance(spec, KioskDevice)
    pins = MockFactory()
    bus = Bus.for_device(site, device)
    timeline = Timeline(bus)
    panel = KioskPanel(spec, pin_factory=pins, device_id=device)
    app_kw.setdefault("lockout_s", 0.0)
    app = KioskApp(site, device, bus, printer, panel=panel, **app_kw)
    app.start(wait_connected=10)
    assert bus.connected, f"{device} could not connect"
    return KioskRig(app, pins, panel, printer, timeline)


# -- the lobby display -----------------------------------------------------------------------
@dataclass
class DisplayRig:
    """A display app (SDL dummy video, recording announcer) and its connection timeline."""

    app: DisplayApp
    announcer: RecordingAnnouncer
    timeline: Timeline
    started_at: float = field(default_factory=time.monotonic)

    @property
    def spoken_keys(self) -> list[tuple[int, int]]:
        """(counter, call_seq) of every announcement, in order."""
        return [s.key for s in self.announcer.spoken]

    def run_until_spoken(self, key: tuple[int, int], timeout: float = 5.0) -> bool:
        """Run the screen's loop until call `key` was announced (or `timeout` passed)."""
        self.app.run(until=lambda: key in self.spoken_keys, timeout=timeout)
        return key in self.spoken_keys

    def run_until_tiles(self, want: dict[int, str], timeout: float = 10.0) -> bool:
        """Run the screen's loop until its counter tiles show `want` (or `timeout` passed)."""
        self.app.run(until=lambda: self.tile_texts() == want, timeout=timeout)
        return self.tile_texts() == want

    def tile_texts(self) -> dict[int, str]:
        """What each counter tile shows on the glass now: its ticket, "—" or "Tutup"."""
        renderer = self.app.renderer
        assert isinstance(renderer, Renderer)
        shown: dict[int, str] = {}
        for index, number in enumerate(zone_counters(self.app.site, self.app.zone_id)):
            texts = [t.text for t in renderer.drawn.get(f"counter-{index}", [])]
            if len(texts) > 1:
                shown[number] = texts[1]
        return shown

    def close(self) -> None:
        """Disconnect and close the screen."""
        self.app.close()


def display_rig(
    site: Site, device: str = "tv-lobby-1", bus: Bus | None = None, **app_kw: Any
) -> DisplayRig:
    """A started display of the inventory (not yet connected: run its loop)."""
    spec = site.devices[device]
    renderer = Renderer(layout_factory(site, spec.zone), SCREEN_SIZE, DUMMY_VIDEO)
    announcer = RecordingAnnouncer()
    bus = bus or Bus.for_device(site, device)
    timeline = Timeline(bus)
    app = DisplayApp(
        site,
        device,
        bus=bus,
        renderer=renderer,
        announcer=announcer,
        base_dir=EXAMPLE.parent,
        **app_kw,
    )
    app.start()
    return DisplayRig(app, announcer, timeline)


# -- what the hub stored -------------------------------------------------------------------------
@dataclass(frozen=True)
class StoredCall:
    """One call (or recall) the hub committed: counter, its call sequence, the ticket."""

    counter: int
    call_seq: int
    ticket: str
    kind: str
    at: float


def stored_calls(database: Path) -> list[StoredCall]:
    """Every call the hub's database records, oldest first (read-only)."""
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=10)
    try:
        rows = conn.execute(
            "SELECT e.counter, e.detail, t.label, e.kind, e.at FROM events e "
            "JOIN tickets t ON t.id = e.ticket WHERE e.kind IN (?, ?, ?) ORDER BY e.id",
            CALL_KINDS,
        ).fetchall()
    finally:
        conn.close()
    return [StoredCall(int(c), int(s), label, kind, at) for c, s, label, kind, at in rows]


def stored_tickets(database: Path) -> list[dict[str, Any]]:
    """Every ticket row of the hub's database, by id (read-only)."""
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=10)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute("SELECT * FROM tickets ORDER BY id")]
    finally:
        conn.close()


def expected_tiles(database: Path, counters: tuple[int, ...]) -> dict[int, str]:
    """What each counter tile must show, from the hub's database: the called ticket, '—' for
    an open counter with nobody called, 'Tutup' for a closed one."""
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=10)
    try:
        rows = conn.execute(
            "SELECT c.number, c.open, t.label FROM counters c LEFT JOIN tickets t "
            "ON t.id = c.current"
        ).fetchall()
    finally:
        conn.close()
    known = {number: (bool(is_open), label) for number, is_open, label in rows}
    tiles = {}
    for number in counters:
        is_open, label = known.get(number, (False, None))
        tiles[number] = label or ("—" if is_open else "Tutup")
    return tiles
