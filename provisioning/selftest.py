"""`mpp selftest`: walk the technician through a new device's hardware, one check at a time.

On the device, after first boot (`sudo systemctl stop mpp-<role>` first: the service holds
the pins, the printer and the screen):

    mpp selftest --site /etc/mpp/site.toml --device caller-03

A kiosk lights each LED, beeps, asks for each button in turn and prints a test ticket; a caller
box does the same with its LCD instead of a printer; a display shows its screen with a test
number at every counter tile and speaks a test call. Each check ends in a line OK / FAIL; the
exit status is 1 when one failed. The parts' own classes do the work (gpiozero panels,
python-escpos printer, RPLCD, pygame renderer, espeak-ng announcer), so a pass here means the
service will find the same hardware.
"""

from __future__ import annotations

import os
import queue
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import click

from protocol import messages as m
from protocol.errors import MppError
from protocol.site import CallerDevice, DisplayDevice, KioskDevice, Site, device_pins, load_site
from protocol.topics import Topics

PRESS_TIMEOUT_S = 20.0
SPEECH_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class Check:
    """The outcome of one selftest step."""

    name: str
    ok: bool
    detail: str = ""
    confirmed: bool = True  # False: done, but nobody was there to say it looked right

    def __str__(self) -> str:
        detail = f": {self.detail}" if self.detail else ""
        state = "FAIL" if not self.ok else "OK  " if self.confirmed else "DONE"
        return f"{state}  {self.name}{detail}"


class Technician(Protocol):
    """The person at the device: reads instructions, answers yes/no questions."""

    present: bool  # False: --non-interactive, nobody to answer

    def tell(self, text: str) -> None:
        """Show an instruction."""

    def confirm(self, question: str) -> bool:
        """Ask a yes/no question about what they see or hear."""

    def pressing(self, button: str) -> None:
        """The selftest now waits for a press of `button` (its inventory name)."""

    def touching(self, pos: tuple[int, int], touch: Callable[[tuple[int, int]], None]) -> None:
        """The selftest now waits for a touch at `pos`; `touch` sends one (simulations)."""


class ConsoleTechnician:
    """The technician at a terminal (SSH or keyboard)."""

    present = True

    def tell(self, text: str) -> None:
        """Print an instruction."""
        click.echo(text)

    def confirm(self, question: str) -> bool:
        """Ask on the terminal; Enter means yes."""
        return click.confirm(question, default=True)

    def pressing(self, button: str) -> None:
        """The technician presses it."""

    def touching(self, pos: tuple[int, int], touch: Callable[[tuple[int, int]], None]) -> None:
        """The technician touches the screen."""


class UnattendedTechnician:
    """Nobody at the device (`--non-interactive`): questions are not asked, what needs eyes or
    ears is reported as done, not confirmed. With gpiozero's simulated pins
    (GPIOZERO_PIN_FACTORY=mock) it presses each button asked for on its pin, and touches the
    screen where asked: a rehearsal of the whole selftest on any machine."""

    present = False

    def __init__(self, pins: dict[str, Any] | None = None, simulate_touch: bool = False) -> None:
        self.pins = pins or {}  # button name -> gpiozero MockPin
        self.simulate_touch = simulate_touch

    def tell(self, text: str) -> None:
        """Print an instruction (for the log)."""
        click.echo(text)

    def confirm(self, question: str) -> bool:
        """Never asked: see `_confirmed`."""
        raise AssertionError("an unattended selftest asks nothing")

    def pressing(self, button: str) -> None:
        """Press and release the button's simulated pin, if there is one."""
        pin = self.pins.get(button)
        if pin is not None:
            pin.drive_low()
            pin.drive_high()

    def touching(self, pos: tuple[int, int], touch: Callable[[tuple[int, int]], None]) -> None:
        """Touch the screen there when simulating."""
        if self.simulate_touch:
            touch(pos)


def simulated_pins(site: Site, device_id: str) -> dict[str, Any]:
    """Button name -> MockPin of the device, when gpiozero's pins are simulated; else {}."""
    from gpiozero import Device
    from gpiozero.pins.mock import MockFactory

    if Device.pin_factory is None and os.environ.get("GPIOZERO_PIN_FACTORY") == "mock":
        Device.pin_factory = MockFactory()
    if not isinstance(Device.pin_factory, MockFactory):
        return {}
    return {
        "priority" if key == "priority_button" else key.split(".")[-1]: Device.pin_factory.pin(pin)
        for key, pin in device_pins(site.devices[device_id]).items()
        if key.startswith(("buttons.", "rating.")) or key == "priority_button"
    }


# What technicians and officers call the buttons (a kiosk's service buttons are named after
# their service).
BUTTON_NAMES: dict[str, tuple[str, str]] = {
    "next": ("Berikutnya", "Next"),
    "recall": ("Panggil ulang", "Recall"),
    "skip": ("Lewati", "Skip"),
    "transfer": ("Alihkan", "Transfer"),
    "open_close": ("Buka/Tutup loket", "Open/close counter"),
    "very_satisfied": ("Sangat puas", "Very satisfied"),
    "satisfied": ("Puas", "Satisfied"),
    "dissatisfied": ("Kurang puas", "Dissatisfied"),
    "very_dissatisfied": ("Tidak puas", "Very dissatisfied"),
    "priority": ("Prioritas", "Priority"),
}


def button_name(site: Site, button: str) -> tuple[str, str]:
    """(Indonesian, English) name of a button: the officer's word, or the service's name."""
    if button in BUTTON_NAMES:
        return BUTTON_NAMES[button]
    service = site.services.get(button)
    if service is not None:
        return service.name.get("id"), service.name.get("en")
    return button, button


def both(indonesian: str, english: str) -> str:
    """An instruction in Indonesian, then English."""
    return f"{indonesian} / {english}"


class _Presses:
    """Collects button presses reported by a panel (on gpiozero's thread)."""

    def __init__(self) -> None:
        self._queue: queue.Queue[str] = queue.Queue()

    def __call__(self, name: str) -> None:
        self._queue.put(name)

    def drain(self) -> None:
        while not self._queue.empty():
            self._queue.get_nowait()

    def wait_for(self, name: str, timeout: float) -> tuple[bool, list[str]]:
        """(pressed, other buttons pressed meanwhile) within `timeout` seconds."""
        others: list[str] = []
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                got = self._queue.get(timeout=left)
            except queue.Empty:
                break
            if got == name:
                return True, others
            others.append(got)
        return False, others


def check_buttons(
    site: Site,
    names: list[str],
    on_press: Callable[[Callable[[str], None]], None],
    technician: Technician,
    timeout: float,
) -> list[Check]:
    """Ask for each button in turn, by the name people use, and wait for exactly that one."""
    presses = _Presses()
    on_press(presses)
    checks = []
    for name in names:
        presses.drain()
        indonesian, english = button_name(site, name)
        technician.tell(
            both(f"Tekan tombol '{indonesian}' [{name}]", f"Press the '{english}' button [{name}]")
        )
        technician.pressing(name)
        pressed, others = presses.wait_for(name, timeout)
        label = f"button {name} ({indonesian})"
        if pressed:
            checks.append(Check(label, True))
        elif others:
            wrong = ", ".join(f"{o} ({button_name(site, o)[0]})" for o in dict.fromkeys(others))
            checks.append(Check(label, False, f"got {wrong} instead: check the wiring"))
        else:
            checks.append(Check(label, False, f"no press within {timeout:g} s: check the wiring"))
    on_press(lambda _name: None)
    return checks


def _confirmed(technician: Technician, name: str, question: str, fix: str) -> Check:
    if not technician.present:
        return Check(name, True, "nobody to confirm it (--non-interactive)", confirmed=False)
    ok = technician.confirm(question)
    return Check(name, ok, "" if ok else fix)


# -- kiosk ----------------------------------------------------------------------------------
def selftest_ticket(site: Site, device_id: str, now: float) -> list[Any]:
    """A test ticket: site, 'TES PRINTER', the device and the time; no queue number."""
    from kiosk.ticket import Cut, Feed, Rule, Text

    stamp = site.local_now(now).strftime("%Y-%m-%d %H:%M")
    return [
        Text(site.site.name, bold=True),
        Rule(),
        Text("TES PRINTER", bold=True, size=2),
        Text(f"{device_id} · {stamp}"),
        Text("Bukan tiket antrian / Not a queue ticket"),
        Feed(2),
        Cut(),
    ]


def kiosk_checks(
    site: Site,
    device_id: str,
    technician: Technician,
    *,
    pin_factory: Any = None,
    printer: Any = None,
    menu: Any = None,
    timeout: float = PRESS_TIMEOUT_S,
) -> list[Check]:
    """LEDs, buzzer, every button, a test ticket, the touchscreen."""
    from kiosk.buttons import KioskPanel
    from kiosk.errors import PrinterError
    from kiosk.printer import TicketPrinter

    spec = site.devices[device_id]
    assert isinstance(spec, KioskDevice)
    checks: list[Check] = []
    panel = KioskPanel(spec, pin_factory=pin_factory, device_id=device_id)
    try:
        for state in ("ready", "busy", "fault"):
            if state in panel.leds:
                panel.indicate(state)  # type: ignore[arg-type]
                checks.append(
                    _confirmed(
                        technician,
                        f"led {state}",
                        both(f"Lampu {state.upper()} menyala?", f"Is the {state.upper()} LED on?"),
                        f"check the LED on leds.{state} and its resistor",
                    )
                )
        panel.indicate("ready")
        if panel.buzzer is not None:
            panel.beep(2)
            checks.append(
                _confirmed(
                    technician,
                    "buzzer",
                    both("Terdengar dua bunyi bip?", "Did you hear two beeps?"),
                    "check the buzzer on its pin",
                )
            )
        checks += check_buttons(site, list(panel.buttons), panel.on_press, technician, timeout)
    finally:
        panel.close()
    if spec.printer is None:
        return [*checks, Check("printer", False, "no printer in the inventory")]
    try:
        printer = printer or TicketPrinter.from_inventory(spec.printer)
    except MppError as exc:
        return [*checks, Check("printer", False, str(exc))]
    try:
        paper = printer.print_ticket(selftest_ticket(site, device_id, time.time()))
    except PrinterError as exc:
        checks.append(Check("printer", False, str(exc)))
    else:
        check = _confirmed(
            technician,
            "printer",
            both("Tiket tes keluar dan terbaca?", "Did a readable test ticket come out?"),
            "check paper, cable and the printer profile in the inventory",
        )
        checks.append(replace(check, detail=check.detail or f"paper {paper}"))
    finally:
        printer.close()
    if spec.screen is not None:
        checks.append(touch_check(site, device_id, technician, timeout=timeout, menu=menu))
    return checks


def touch_check(
    site: Site, device_id: str, technician: Technician, *, timeout: float, menu: Any = None
) -> Check:
    """The touch menu on the kiosk's screen: a touch on the first service's tile must choose
    exactly that service (a rotated or uncalibrated touch panel chooses another, or none)."""
    from kiosk.app import offered_services
    from kiosk.errors import KioskConfigError
    from kiosk.menu import TouchMenu

    spec = site.devices[device_id]
    assert isinstance(spec, KioskDevice) and spec.screen is not None
    try:
        menu = menu or TouchMenu(
            site,
            offered_services(site, spec),
            size=(spec.screen.width, spec.screen.height),
            fullscreen=spec.screen.fullscreen,
            lang=spec.lang,
        )
    except KioskConfigError as exc:
        return Check("touchscreen", False, str(exc))
    try:
        chosen: list[str] = []
        menu.on_choose(chosen.append)
        menu.on_priority(lambda category: chosen.append(f"priority:{category}"))
        menu.draw()
        target = next(t for t in menu.view().tiles if t.enabled and ":" not in t.key)
        x, y, w, h = target.rect
        indonesian, english = button_name(site, target.key)
        technician.tell(both(f"Sentuh '{indonesian}' di layar", f"Touch '{english}' on the screen"))
        technician.touching((x + w // 2, y + h // 2), menu.post_touch)
        deadline = time.monotonic() + timeout
        while not chosen and time.monotonic() < deadline:
            if not menu.pump():
                break
            time.sleep(0.02)
        if not chosen and menu.last_touch is None:
            return Check("touchscreen", False, f"no touch within {timeout:g} s: check the cable")
        if not chosen or chosen[0] != target.key:
            got = f"'{chosen[0]}' was chosen" if chosen else f"it arrived at {menu.last_touch}"
            return Check(
                "touchscreen",
                False,
                f"touched at '{target.key}' {(x + w // 2, y + h // 2)} but {got}: check the "
                "touch panel's rotation and calibration",
            )
        return Check("touchscreen", True, f"'{target.key}' chosen")
    finally:
        menu.close()


# -- caller box -----------------------------------------------------------------------------
def caller_checks(
    site: Site,
    device_id: str,
    technician: Technician,
    *,
    pin_factory: Any = None,
    lcd: Any = None,
    timeout: float = PRESS_TIMEOUT_S,
) -> list[Check]:
    """LEDs, buzzer, every officer and rating button, the character display."""
    from caller.buttons import CallerPanel
    from caller.lcd import LcdError, RplcdDisplay, fit

    spec = site.devices[device_id]
    assert isinstance(spec, CallerDevice)
    checks: list[Check] = []
    panel = CallerPanel(spec, device_id, pin_factory=pin_factory)
    try:
        for name in ("ready", "busy", "fault"):
            if getattr(spec.leds, name) is not None:
                panel.light(name, True)
                checks.append(
                    _confirmed(
                        technician,
                        f"led {name}",
                        both(f"Lampu {name.upper()} menyala?", f"Is the {name.upper()} LED on?"),
                        f"check the LED on leds.{name}",
                    )
                )
                panel.light(name, False)
        if spec.buzzer is not None:
            panel.beep(2)
            checks.append(
                _confirmed(
                    technician,
                    "buzzer",
                    both("Terdengar dua bunyi bip?", "Did you hear two beeps?"),
                    "check the buzzer on its pin",
                )
            )
        checks += check_buttons(site, list(panel.buttons), panel.on_press, technician, timeout)
    finally:
        panel.close()
    if spec.lcd is not None:
        try:
            lcd = lcd or RplcdDisplay(spec.lcd)
            lcd.write([fit("TES LCD", spec.lcd.cols), fit(device_id, spec.lcd.cols)])
        except LcdError as exc:
            checks.append(Check("lcd", False, str(exc)))
        else:
            checks.append(
                _confirmed(
                    technician,
                    "lcd",
                    both(
                        f"Layar LCD menampilkan 'TES LCD' dan '{device_id}'?",
                        f"Does the LCD show 'TES LCD' and '{device_id}'?",
                    ),
                    "check the I2C address and the contrast screw",
                )
            )
        finally:
            if lcd is not None:
                lcd.close()
    return checks


# -- display --------------------------------------------------------------------------------
def selftest_calls(site: Site, zone_id: str, now: float) -> list[m.CounterState]:
    """A call at every counter the zone shows, numbered after the counter (A003 at loket 3)."""
    from display.scene import zone_counters

    calls = []
    for number in zone_counters(site, zone_id):
        service = site.counters[number].services[0]
        ticket = f"{site.services[service].prefix}{number % 1000:03d}"
        calls.append(
            m.CounterState(
                seq=1,
                counter=number,
                open=True,
                officer="tes",
                call_seq=1,
                ticket=ticket,
                service=service,
                called_at=now,
                waiting=0,
            )
        )
    return calls


def display_checks(
    site: Site,
    device_id: str,
    technician: Technician,
    *,
    renderer: Any = None,
    announcer: Any = None,
    base_dir: Path = Path(),
    cache_dir: Path | None = None,
) -> list[Check]:
    """The zone's screen with a test number on every counter tile, and a spoken test call."""
    from display.announcer import Announcement, SpeechAnnouncer
    from display.app import layout_factory
    from display.renderer import MixerPlayer, Renderer
    from display.scene import SceneBuilder
    from display.speech_text import call_phrase
    from display.state import ScreenModel
    from display.video import on_raspberry_pi, video_plan

    spec = site.devices[device_id]
    assert isinstance(spec, DisplayDevice)
    zone = site.zones[spec.zone]
    lang = spec.lang or zone.lang
    now = time.time()
    calls = selftest_calls(site, spec.zone, now)
    checks: list[Check] = []
    if renderer is None:
        plan = video_plan(
            os.environ,
            is_pi=on_raspberry_pi(),
            fullscreen=None,
            inventory_fullscreen=spec.screen.fullscreen,
        )
        size = (spec.screen.width, spec.screen.height)
        renderer = Renderer(layout_factory(site, spec.zone), size, plan, title="MPP selftest")
    try:
        layout = renderer.open()
        model = ScreenModel(site)
        topics = Topics(site.site.id)
        for state in calls:
            model.apply(model.parse(topics.counter_state(state.counter), m.encode(state)), now)
        builder = SceneBuilder(site, spec.zone, layout, lang, base_dir)
        renderer.render(builder.build(model, now, {}, False))
        shown = ", ".join(f"{c.ticket}→{c.counter}" for c in calls[:4])
        checks.append(
            _confirmed(
                technician,
                "screen",
                both(
                    f"Layar menampilkan nomor tes di tiap loket ({shown}, ...) dan terbaca "
                    "dari jauh?",
                    "Does the screen show a test number at every counter and read well from afar?",
                ),
                "check the HDMI cable, the resolution in [devices.ID.screen] and the TV input",
            )
        )
        if zone.speech and calls:
            call = calls[0]
            assert call.ticket is not None
            phrase = call_phrase(site, call.ticket, call.counter, lang, zone.number_reading)
            if announcer is None:
                base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
                announcer = SpeechAnnouncer(MixerPlayer(), cache_dir or Path(base) / "mpp-display")
            announcer.start()
            announcer.announce(
                Announcement(key=(call.counter, 0), phrase=phrase, volume=zone.volume)
            )
            deadline = time.monotonic() + SPEECH_TIMEOUT_S
            while not announcer.spoken and time.monotonic() < deadline:
                time.sleep(0.05)
            spoken = announcer.spoken[0] if announcer.spoken else None
            if spoken is None or spoken.error:
                reason = spoken.error if spoken else f"nothing played within {SPEECH_TIMEOUT_S:g} s"
                checks.append(
                    Check("speech", False, f"{reason}; check espeak-ng and the audio output")
                )
            else:
                check = _confirmed(
                    technician,
                    "speech",
                    both(f'Terdengar jelas: "{phrase.text}"?', f'Clearly heard: "{phrase.text}"?'),
                    "check the speaker, its cable and the volume of the zone",
                )
                checks.append(check)
        elif not zone.speech:
            checks.append(
                Check("speech", True, f"zone {spec.zone} does not speak (speech = false)")
            )
    finally:
        if announcer is not None:
            announcer.close()
        renderer.close()
    return checks


# -- command --------------------------------------------------------------------------------
def run_selftest(site: Site, device_id: str, technician: Technician, **kwargs: Any) -> list[Check]:
    """Every check of `device_id`, by its role."""
    spec = site.devices.get(device_id)
    if spec is None:
        raise click.ClickException(
            f"devices.{device_id}: not in the inventory; devices: {', '.join(site.devices)}"
        )
    if isinstance(spec, KioskDevice):
        return kiosk_checks(site, device_id, technician, **kwargs)
    if isinstance(spec, CallerDevice):
        return caller_checks(site, device_id, technician, **kwargs)
    return display_checks(site, device_id, technician, **kwargs)


@click.command("selftest")
@click.option("--site", "site_file", required=True, type=click.Path(dir_okay=False))
@click.option("--device", "device_id", required=True, help="This device's id in the inventory.")
@click.option(
    "--timeout",
    default=PRESS_TIMEOUT_S,
    show_default=True,
    type=click.FloatRange(0.1, 300),
    help="Seconds to wait for each button press or touch.",
)
@click.option(
    "--non-interactive",
    is_flag=True,
    help="Ask nothing: what needs eyes or ears is reported DONE, not confirmed; with "
    "GPIOZERO_PIN_FACTORY=mock the buttons and the touchscreen are pressed by the selftest.",
)
def command(site_file: str, device_id: str, timeout: float, non_interactive: bool) -> None:
    """Check this device's buttons, LEDs, buzzer, printer, LCD, screen and speech, step by step."""
    site = load_site(site_file)
    spec = site.devices.get(device_id)
    kwargs: dict[str, Any] = {}
    if isinstance(spec, KioskDevice | CallerDevice):
        kwargs["timeout"] = timeout
    else:
        kwargs["base_dir"] = Path(site_file).resolve().parent
    technician: Technician = ConsoleTechnician()
    if non_interactive:
        # A display has no pins (and no gpiozero in its extra).
        pins = (
            simulated_pins(site, device_id) if isinstance(spec, KioskDevice | CallerDevice) else {}
        )
        technician = UnattendedTechnician(pins, simulate_touch=bool(pins))
    click.echo(both(f"Uji perangkat {device_id}", f"Selftest of {device_id}"))
    try:
        checks = run_selftest(site, device_id, technician, **kwargs)
    except MppError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo("")
    for check in checks:
        click.echo(str(check))
    failed = [c for c in checks if not c.ok]
    unconfirmed = [c for c in checks if c.ok and not c.confirmed]
    note = f" ({len(unconfirmed)} DONE without a person to confirm)" if unconfirmed else ""
    click.echo(f"{len(checks) - len(failed)}/{len(checks)} OK{note}")
    sys.exit(1 if failed else 0)
