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

PROMPT = re.compile(r"Press the '[^']*' button \[(\S+)\]")


class ScriptedTechnician:
    """Presses what the selftest asks for (or a wiring mistake), answers as told."""

    present = True

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

    def pressing(self, button: str) -> None:
        pass  # pressed on reading the prompt (tell)

    def touching(self, pos: tuple[int, int], touch) -> None:
        pass


def plain(name: str) -> str:
    """'button next (Berikutnya)' -> 'button next'."""
    return name.split(" (", maxsplit=1)[0]


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
    return {plain(c.name): c.detail for c in checks if not c.ok}


def test_kiosk_all_good(site: Site, pins: MockFactory) -> None:
    spec = site.devices["kiosk-3"].printer
    device = Dummy(profile=spec.profile)
    tech = ScriptedTechnician(site, "kiosk-3", pins)
    checks = run_selftest(
        site, "kiosk-3", tech, pin_factory=pins, printer=TicketPrinter(device, spec), timeout=2
    )
    assert failed(checks) == {}
    names = [plain(c.name) for c in checks]
    buttons = [*site.devices["kiosk-3"].buttons, "priority"]
    assert names == ["led ready", "led busy", "led fault", "buzzer",
                     *[f"button {b}" for b in buttons], "printer"]  # fmt: skip
    assert b"TES PRINTER" in device.output and b"kiosk-3" in device.output
    # Indonesian first, by the name on the button (the service's), the inventory key after it.
    assert tech.told[0] == (
        f"Tekan tombol '{site.services['ktp'].name.get('id')}' [ktp] / "
        f"Press the '{site.services['ktp'].name.get('en')}' button [ktp]"
    )


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
        "button kk": f"got akta ({site.services['akta'].name.get('id')}) instead: check the wiring",
        "button info": "no press within 0.3 s: check the wiring",
    }


def test_caller_box(site: Site, pins: MockFactory) -> None:
    lcd = FakeCharDisplay(16, 2)
    tech = ScriptedTechnician(site, "caller-03", pins)
    checks = run_selftest(site, "caller-03", tech, pin_factory=pins, lcd=lcd, timeout=2)
    assert failed(checks) == {}
    names = {c.name for c in checks}
    assert {"led ready", "led fault", "buzzer", "lcd", "button next (Berikutnya)",
            "button open_close (Buka/Tutup loket)",
            "button very_dissatisfied (Tidak puas)"} <= names  # fmt: skip
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
    assert "FAIL  button next (Berikutnya): no press within 0.1 s: check the wiring" in done.stdout
    # smbus2 comes with the caller extra: the check reaches the bus, which this PC lacks.
    assert "FAIL  lcd: PCF8574 display at I2C bus 1, address 0x27: " in done.stdout
    assert "smbus2" not in done.stdout
    assert re.search(r"\n\d+/\d+ OK\n", done.stdout)


def test_non_interactive_with_simulated_pins_asks_nothing(tmp_path: Path) -> None:
    """--non-interactive: no question; LEDs DONE (unconfirmed); the buttons and the touch
    screen pressed on simulated pins; the kiosk's ticket printed to a file printer."""
    ticket = tmp_path / "ticket.bin"
    text = example_text().replace(
        'printer = { connection = "usb", vendor_id = 0x04b8, product_id = 0x0e15, profile = "TM-T20II" }',
        f'printer = {{ connection = "file", path = "{ticket}", profile = "TM-T20II" }}',
    )
    assert str(ticket) in text
    (tmp_path / "site.toml").write_text(text)
    env = {**os.environ, "GPIOZERO_PIN_FACTORY": "mock", "SDL_VIDEODRIVER": "dummy"}
    done = subprocess.run(
        [str(Path(sys.executable).parent / "mpp"), "selftest", "--site", str(tmp_path / "site.toml"),
         "--device", "kiosk-1", "--non-interactive", "--timeout", "5"],
        cwd=ROOT, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert "DONE  led ready: nobody to confirm it (--non-interactive)" in lines
    assert "OK    button priority (Prioritas)" in lines
    assert "OK    touchscreen: 'ktp' chosen" in lines
    assert lines[-1] == "7/7 OK (5 DONE without a person to confirm)"
    assert b"TES PRINTER" in ticket.read_bytes()


def test_a_touch_that_lands_elsewhere_is_a_wiring_fault(site: Site, pins: MockFactory) -> None:
    from provisioning.selftest import UnattendedTechnician, touch_check

    class Rotated(UnattendedTechnician):
        """A touch panel mounted upside down: the touch arrives mirrored."""

        def touching(self, pos, touch) -> None:
            spec = site.devices["kiosk-1"].screen
            touch((spec.width - 1 - pos[0], spec.height - 1 - pos[1]))

    check = touch_check(site, "kiosk-1", Rotated(simulate_touch=True), timeout=2)
    assert not check.ok and "touch panel's rotation and calibration" in check.detail
    nobody = touch_check(site, "kiosk-1", UnattendedTechnician(), timeout=0.2)
    assert not nobody.ok and nobody.detail == "no touch within 0.2 s: check the cable"
