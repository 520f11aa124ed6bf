"""Caller box fixtures: MockFactory pins, a box wired to a real bus, press helpers."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from gpiozero.pins.mock import MockFactory

from caller.box import CallerBox
from caller.buttons import CallerPanel
from caller.lcd import FakeCharDisplay
from protocol.mqtt import Bus
from protocol.site import CallerDevice, Site

# Pins of the example inventory's caller boxes.
PINS = {
    "next": 17,
    "recall": 27,
    "skip": 22,
    "transfer": 23,
    "open_close": 24,
    "very_satisfied": 5,
    "satisfied": 6,
    "dissatisfied": 13,
    "very_dissatisfied": 19,
    "led_ready": 16,
    "led_fault": 20,
    "buzzer": 12,
}


@dataclass
class Rig:
    """A caller box on MockFactory pins with a recording display, on a real bus."""

    box: CallerBox
    pins: MockFactory
    display: FakeCharDisplay
    panel: CallerPanel
    bus: Bus
    skew: list[float]  # seconds added to the box's clock (let feedback or choices lapse)
    last_press: dict[str, float] = field(default_factory=dict)

    def press(self, button: str, idle: bool = True, fresh: bool = True) -> None:
        """Press and release a button as an officer would; wait for the answer by default.

        `fresh` first moves the box's clock past the button's debounce window, so the press
        counts as a new one; `fresh=False` presses at once (a double press, a bounce)."""
        if fresh and button in self.last_press:
            wait = self.last_press[button] + self.box.debounce_s + 0.02 - self.box.clock()
            self.skew[0] += max(0.0, wait)
        self.last_press[button] = self.box.clock()
        pin = self.pins.pin(PINS[button])
        pin.drive_low()
        pin.drive_high()
        if idle:
            assert self.box.wait_idle(10), f"{button}: no answer handled within 10 s"

    def pin_states(self, name: str) -> list[bool]:
        """The output pin's history of states (LEDs, buzzer)."""
        return [bool(s.state) for s in self.pins.pin(PINS[name]).states]

    def clear_states(self) -> None:
        """Forget the output pins' history before the next step."""
        for name in ("led_ready", "led_fault", "buzzer"):
            self.pins.pin(PINS[name]).clear_states()

    @property
    def outcomes(self) -> list[tuple[str, str, str]]:
        """(button, status, code) of every press so far."""
        return [(o.button, o.status, o.code) for o in self.box.recent]


@pytest.fixture
def pins() -> Iterator[MockFactory]:
    """A fresh mock pin factory per test (no global pin factory is touched)."""
    factory = MockFactory()
    yield factory
    factory.reset()


@pytest.fixture
def make_rig(pins: MockFactory) -> Iterator[Callable[..., Rig]]:
    """Factory: `make_rig(site, bus)` builds and starts a caller box for `bus.device`."""
    made: list[Rig] = []

    def make(site: Site, bus: Bus, display: FakeCharDisplay | None = None, **kw: Any) -> Rig:
        device = site.devices[bus.device]
        assert isinstance(device, CallerDevice)
        lcd = device.lcd
        display = display or FakeCharDisplay(lcd.cols if lcd else 16, lcd.rows if lcd else 2)
        panel = CallerPanel(device, bus.device, pin_factory=pins)
        kw.setdefault("debounce_s", 0.2)
        skew = [0.0]
        kw.setdefault("clock", lambda: time.monotonic() + skew[0])
        box = CallerBox(site, bus.device, bus, panel=panel, display=display, **kw).start()
        rig = Rig(box, pins, display, panel, bus, skew)
        made.append(rig)
        return rig

    yield make
    for rig in made:
        rig.box.close()
        rig.panel.close()
