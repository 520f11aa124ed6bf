"""The caller box's GPIO on gpiozero MockFactory pins."""

from __future__ import annotations

import time

import pytest
from gpiozero import LED
from gpiozero.pins.mock import MockFactory

from caller.buttons import OFFICER_BUTTONS, RATING_BUTTONS, CallerPanel, PanelError
from protocol.site import CallerDevice
from tests.caller.conftest import PINS
from tests.conftest import make_site
from tests.timing import wait_until


def example_box() -> CallerDevice:
    device = make_site().devices["caller-01"]
    assert isinstance(device, CallerDevice)
    return device


def test_every_button_reports_its_name(pins: MockFactory) -> None:
    panel = CallerPanel(example_box(), "caller-01", pin_factory=pins)
    pressed: list[str] = []
    panel.on_press(pressed.append)
    assert set(panel.buttons) == {*OFFICER_BUTTONS, *RATING_BUTTONS}
    for name in (*OFFICER_BUTTONS, *RATING_BUTTONS):
        pins.pin(PINS[name]).drive_low()
        pins.pin(PINS[name]).drive_high()  # releasing is not a press
    assert pressed == [*OFFICER_BUTTONS, *RATING_BUTTONS]
    panel.close()


def test_leds_and_buzzer(pins: MockFactory) -> None:
    panel = CallerPanel(example_box(), "caller-01", pin_factory=pins)
    ready, fault, buzzer = (pins.pin(PINS[n]) for n in ("led_ready", "led_fault", "buzzer"))
    panel.light("ready", True)
    assert ready.state
    panel.light("ready", False)
    assert not ready.state
    panel.light("busy", True)  # no busy LED on this box: nothing happens, nothing fails
    panel.beep(2, on_s=0.01, off_s=0.01)
    panel.blink("fault", 1, on_s=0.01, off_s=0.01)
    assert wait_until(lambda: len(buzzer.states) >= 5 and len(fault.states) >= 3, 2)
    assert [s.state for s in buzzer.states[:5]] == [False, True, False, True, False]
    assert [s.state for s in fault.states[:3]] == [False, True, False]
    panel.close()


def test_a_box_without_rating_pad_leds_or_buzzer(pins: MockFactory) -> None:
    bare = CallerDevice.model_validate({"role": "caller", "counter": 3, "buttons": {"next": 17}})
    panel = CallerPanel(bare, "caller-03", pin_factory=pins)
    pressed: list[str] = []
    panel.on_press(pressed.append)
    assert panel.buttons == ("next",)
    panel.beep()
    panel.blink("fault")
    panel.light("ready", True)
    pins.pin(17).drive_low()
    assert pressed == ["next"]
    panel.close()


def test_pin_in_use_is_a_clear_error_and_releases_the_rest(pins: MockFactory) -> None:
    other = LED(20, pin_factory=pins)  # something else drives the fault LED's pin
    with pytest.raises(PanelError, match=r"devices.caller-01.leds.fault: pin 20 cannot be used"):
        CallerPanel(example_box(), "caller-01", pin_factory=pins)
    other.close()
    # The failed attempt released what it had taken: a second attempt works.
    CallerPanel(example_box(), "caller-01", pin_factory=pins).close()


def test_unknown_pin_name_is_a_clear_error(pins: MockFactory) -> None:
    device = CallerDevice.model_validate(
        {"role": "caller", "counter": 3, "buttons": {"next": "GPIO99"}}
    )
    with pytest.raises(PanelError, match=r"devices.caller-03.buttons.next: pin 'GPIO99'"):
        CallerPanel(device, "caller-03", pin_factory=pins)


def test_holding_a_button_is_one_press(pins: MockFactory) -> None:
    panel = CallerPanel(example_box(), "caller-01", pin_factory=pins)
    pressed: list[str] = []
    panel.on_press(pressed.append)
    pins.pin(17).drive_low()
    time.sleep(0.05)
    pins.pin(17).drive_high()
    assert pressed == ["next"]
    panel.close()
