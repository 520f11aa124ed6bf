"""`mpp selftest` with the parts' real classes on simulated hardware: MockFactory pins, an escpos
Dummy printer, the recording character display, SDL's dummy screen, the recording announcer."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from escpos.printer import Dummy
from gpiozero import Device
from gpiozero.pins.mock import MockFactory

from caller.lcd import FakeCharDisplay
from display.announcer import RecordingAnnouncer
from display.app import layout_factory
from display.renderer import Renderer
from display.video import VideoPlan
from kiosk.printer import TicketPrinter
from protocol.site import Site, device_pins, parse_site
from provisioning.selftest import Check, run_selftest
from tests.conftest import EXAMPLE, ROOT, example_text

PROMPT = re.compile(r"Press the (\S+) button")


class ScriptedTechnician:
    """Presses what the selftest asks for (or a wiring mistake), answers as told."""

    def __init__(
        self, site: Site, device: str, pins: MockFactory, *, swap: dict[str, str] | None = None,
        skip: set[str] | None = None, no: set[str] | None = None,
    ) -> None:  # fmt: skip
        self.pins = {
            key.split(".")[-1] if key != "priority_button" else "priority": pin
            for key, pin in device_pins(site.devices[device]).items()
        }
        self.factory = pins
        self.swap = swap or {}  # asked for X, the wire goes to Y's pin
        self.skip = skip or set()  # asked for X, nothing happens
        self.no = no or set()  # questions containing these words get "no"
        self.told: list[str] = []
        self.asked: list[str] = []

    def tell(self, text: str) -> None:
        self.told.append(text)
        match = PROMPT.search(text)
        if match is None:
            return
        name = match[1].lower()
        if name in self.skip:
            return
        pin = self.factory.pin(self.pins[self.swap.get(name, name)])
        pin.drive_low()
        pin.drive_high()

    def confirm(self, question: str) -> bool:
        self.asked.append(question)
        return not any(word in question for word in self.no)


@pytest.fixture
def site() -> Site:
    return parse_site(example_text())


@pytest.fixture
def pins() -> Iterator[MockFactory]:
    factory = MockFactory()
    yield factory
    factory.reset()
    Device.pin_factory = None


def failed(checks: list[Check]) -> dict[str, str]:
    return {c.name: c.detail for c in checks if not c.ok}


def test_kiosk_all_good(site: Site, pins: MockFactory) -> None:
    spec = site.devices["kiosk-3"].printer
    device = Dummy(profile=spec.profile)
    tech = ScriptedTechnician(site, "kiosk-3", pins)
    checks = run_selftest(
        site, "kiosk-3", tech, pin_factory=pins, printer=TicketPrinter(device, spec), timeout=2
    )
    assert failed(checks) == {}
    names = [c.name for c in checks]
    buttons = [*site.devices["kiosk-3"].buttons, "priority"]
    assert names == ["led ready", "led busy", "led fault", "buzzer",
                     *[f"button {b}" for b in buttons], "printer"]  # fmt: skip
    assert b"TES PRINTER" in device.output and b"kiosk-3" in device.output
    assert tech.told[0] == "Tekan tombol KTP / Press the KTP button"  # Indonesian first


def test_kiosk_wiring_faults_are_named(site: Site, pins: MockFactory) -> None:
    spec = site.devices["kiosk-3"].printer
    tech = ScriptedTechnician(
        site, "kiosk-3", pins, swap={"kk": "akta"}, skip={"info"}, no={"BUSY"}
    )
    checks = run_selftest(
        site, "kiosk-3", tech, pin_factory=pins,
        printer=TicketPrinter(Dummy(profile=spec.profile), spec), timeout=0.3,
    )  # fmt: skip
    assert failed(checks) == {
        "led busy": "check the LED on leds.busy and its resistor",
        "button kk": "got akta instead: check the wiring",
        "button info": "no press within 0.3 s: check the wiring",
    }


def test_caller_box(site: Site, pins: MockFactory) -> None:
    lcd = FakeCharDisplay(16, 2)
    tech = ScriptedTechnician(site, "caller-03", pins)
    checks = run_selftest(site, "caller-03", tech, pin_factory=pins, lcd=lcd, timeout=2)
    assert failed(checks) == {}
    names = {c.name for c in checks}
    assert {"led ready", "led fault", "buzzer", "lcd", "button next", "button open_close",
            "button very_dissatisfied"} <= names  # fmt: skip
    assert lcd.history[0] == ["TES LCD         ", "caller-03       "]
    tech = ScriptedTechnician(site, "caller-03", pins, no={"LCD"})
    checks = run_selftest(
        site, "caller-03", tech, pin_factory=pins, lcd=FakeCharDisplay(), timeout=2
    )
    assert failed(checks) == {"lcd": "check the I2C address and the contrast screw"}


@pytest.mark.parametrize("device", ["tv-lobby-3", "tv-entrance"])
def test_display_screen_and_speech(site: Site, device: str) -> None:
    spec = site.devices[device]
    renderer = Renderer(
        layout_factory(site, spec.zone), (spec.screen.width, spec.screen.height),
        VideoPlan(("dummy",), fullscreen=False),
    )  # fmt: skip
    announcer = RecordingAnnouncer()
    tech = ScriptedTechnician(site, device, MockFactory())
    checks = run_selftest(
        site, device, tech, renderer=renderer, announcer=announcer, base_dir=EXAMPLE.parent
    )
    assert failed(checks) == {}
    if device == "tv-lobby-3":
        drawn = {t.text for texts in renderer.drawn.values() for t in texts}
        assert {"A001", "A003", "G010", "X030"} <= drawn  # every counter tile has its number
        (spoken,) = announcer.spoken
        assert spoken.text == "Nomor antrian a satu, silakan menuju loket satu"
    else:  # the entrance zone does not speak
        assert announcer.spoken == []
        assert [c.detail for c in checks if c.name == "speech"] == [
            "zone entrance does not speak (speech = false)"
        ]


def test_mpp_selftest_command_reports_and_exits_1() -> None:
    """The real command on a PC: mock pins, no one pressing, no LCD on I2C."""
    env = {**os.environ, "GPIOZERO_PIN_FACTORY": "mock", "SDL_VIDEODRIVER": "dummy"}
    done = subprocess.run(
        [str(Path(sys.executable).parent / "mpp"), "selftest", "--site", str(EXAMPLE),
         "--device", "caller-30", "--timeout", "0.1"],
        cwd=ROOT, env=env, input="y\n" * 10, capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Uji perangkat caller-30 / Selftest of caller-30" in done.stdout
    assert "FAIL  button next: no press within 0.1 s: check the wiring" in done.stdout
    assert "FAIL  lcd: " in done.stdout  # no I2C display on this machine; the reason follows
    assert re.search(r"\n\d+/\d+ OK\n", done.stdout)
