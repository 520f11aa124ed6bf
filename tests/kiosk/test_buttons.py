"""The GPIO panel on MockFactory pins: buttons from the inventory, LEDs and buzzer."""

from __future__ import annotations

import pytest
from gpiozero.pins.mock import MockFactory

from kiosk.buttons import PRIORITY, KioskPanel
from kiosk.errors import PanelError
from protocol.site import load_site
from tests.conftest import EXAMPLE
from tests.kiosk.conftest import press
from tests.timing import wait_until

SITE = load_site(EXAMPLE)
KIOSK3 = SITE.devices["kiosk-3"]  # buttons ktp=5 kk=6 ... priority=26, LEDs 16/20/21, buzzer 12


def test_each_inventory_button_reports_its_service(pins: MockFactory) -> None:
    panel = KioskPanel(KIOSK3, pin_factory=pins, device_id="kiosk-3")
    pressed: list[str] = []
    panel.on_press(pressed.append)
    for pin in (5, 6, 13, 26):
        press(pins, pin)
    assert pressed == ["ktp", "kk", "akta", PRIORITY]
    assert set(panel.buttons) == {*KIOSK3.buttons, PRIORITY}
    panel.close()


def test_leds_show_the_kiosk_state(pins: MockFactory) -> None:
    panel = KioskPanel(KIOSK3, pin_factory=pins, device_id="kiosk-3")
    panel.indicate("ready")
    assert (pins.pin(16).state, pins.pin(20).state, pins.pin(21).state) == (1, 0, 0)
    panel.indicate("busy")
    assert (pins.pin(16).state, pins.pin(20).state, pins.pin(21).state) == (0, 1, 0)
    panel.indicate("fault")
    assert panel.led_states() == {"ready": False, "busy": False, "fault": True}
    panel.indicate("offline")  # the fault LED blinks
    assert wait_until(lambda: sum(s.state for s in pins.pin(21).states) >= 2, timeout=3)
    panel.close()


def test_buzzer_beeps_the_pattern(pins: MockFactory) -> None:
    panel = KioskPanel(KIOSK3, pin_factory=pins, device_id="kiosk-3")
    panel.beep(2)
    assert wait_until(lambda: [s.state for s in pins.pin(12).states].count(True) == 2, timeout=3)
    panel.close()


def test_kiosk_without_buzzer_or_leds_is_fine(pins: MockFactory) -> None:
    panel = KioskPanel(SITE.devices["kiosk-2"], pin_factory=pins, device_id="kiosk-2")
    panel.beep("ok")
    panel.indicate("fault")
    assert set(panel.buttons) == {PRIORITY} and panel.buzzer is None
    panel.close()


def test_a_bad_pin_names_the_inventory_key_and_releases_the_others(pins: MockFactory) -> None:
    bad = KIOSK3.model_copy(update={"buttons": {"ktp": 5, "kk": "GPIO99"}})
    with pytest.raises(PanelError, match=r"devices\.kiosk-3\.buttons\.kk: GPIO pin 'GPIO99'"):
        KioskPanel(bad, pin_factory=pins, device_id="kiosk-3")
    panel = KioskPanel(KIOSK3, pin_factory=pins, device_id="kiosk-3")  # pin 5 was released
    panel.close()
