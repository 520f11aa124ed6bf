"""The caller box's GPIO: officer and rating buttons, status LEDs and buzzer (gpiozero).

The only module of the box that imports gpiozero. Pins come from the inventory; tests pass
a `MockFactory` and press with `factory.pin(17).drive_low()`.

    panel = CallerPanel(site.devices["caller-03"], "caller-03")
    panel.on_press(lambda button: print(button))     # 'next', 'very_satisfied', ...
    panel.beep(2)
"""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Callable
from typing import Any

from protocol.errors import MppError
from protocol.site import CallerDevice

log = logging.getLogger("mpp.caller")

# Button names are the inventory keys of [devices.ID.buttons] and [devices.ID.rating].
OFFICER_BUTTONS = ("next", "recall", "skip", "transfer", "open_close")
RATING_BUTTONS = ("very_satisfied", "satisfied", "dissatisfied", "very_dissatisfied")
LIGHTS = ("ready", "busy", "fault")


class PanelError(MppError, RuntimeError):
    """A button, LED or buzzer pin of the caller box cannot be set up."""


class CallerPanel:
    """Buttons, LEDs and buzzer of one caller box; absent parts are simply not there."""

    def __init__(
        self, device: CallerDevice, device_id: str = "caller", pin_factory: Any = None
    ) -> None:
        from gpiozero import LED, Button, Buzzer, Device
        from gpiozero.exc import BadPinFactory, GPIOZeroError, PinFactoryFallback

        self.device_id = device_id
        self._handler: Callable[[str], None] | None = None
        self._buttons: dict[str, Any] = {}
        self._lights: dict[str, Any] = {}
        self._buzzer: Any = None
        # LEDs and buzzer are switched from the button thread and the MQTT thread: gpiozero's
        # blink() assigns its thread before starting it, and an on() from another thread in
        # between fails joining it (RuntimeError: it killed paho's network thread once).
        self._outputs = threading.Lock()
        wiring: list[tuple[str, str, Any, Callable[..., Any]]] = [
            (name, f"buttons.{name}", getattr(device.buttons, name), Button)
            for name in OFFICER_BUTTONS
        ]
        if device.rating is not None:
            wiring += [
                (name, f"rating.{name}", getattr(device.rating, name), Button)
                for name in RATING_BUTTONS
            ]
        wiring += [(name, f"leds.{name}", getattr(device.leds, name), LED) for name in LIGHTS]
        wiring.append(("buzzer", "buzzer", device.buzzer, Buzzer))
        if pin_factory is None and Device.pin_factory is None:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", PinFactoryFallback)
                    Device.ensure_pin_factory()
            except BadPinFactory:
                raise PanelError(
                    f"{device_id}: no GPIO driver found on this machine; on a Raspberry Pi "
                    "install Debian's python3-lgpio (its bundle links it into the venv); "
                    "for a dry run elsewhere set GPIOZERO_PIN_FACTORY=mock"
                ) from None
        for name, key, pin, kind in wiring:
            if pin is None:
                continue
            try:
                if kind is Button:
                    # Our own debounce (caller.debounce) decides what is a press.
                    button = Button(pin, pull_up=True, bounce_time=None, pin_factory=pin_factory)
                    button.when_pressed = self._callback(name)
                    self._buttons[name] = button
                elif kind is LED:
                    self._lights[name] = LED(pin, pin_factory=pin_factory)
                else:
                    self._buzzer = Buzzer(pin, pin_factory=pin_factory)
            except (GPIOZeroError, ValueError, OSError) as exc:
                self.close()
                raise PanelError(
                    f"devices.{device_id}.{key}: pin {pin!r} cannot be used: {exc}; check the "
                    "pin number in the inventory and that no other program holds it"
                ) from None

    @property
    def buttons(self) -> tuple[str, ...]:
        """Names of the buttons wired on this box."""
        return tuple(self._buttons)

    def on_press(self, handler: Callable[[str], None]) -> None:
        """Call `handler(button_name)` on every press (on gpiozero's event thread)."""
        self._handler = handler

    def _callback(self, name: str) -> Callable[[], None]:
        def pressed() -> None:
            if self._handler is not None:
                self._handler(name)

        return pressed

    def light(self, name: str, on: bool) -> None:
        """Switch a status LED ('ready', 'busy', 'fault') steadily on or off."""
        led = self._lights.get(name)
        if led is None:
            return
        with self._outputs:
            if on:
                led.on()
            else:
                led.off()

    def blink(self, name: str, times: int = 1, on_s: float = 0.2, off_s: float = 0.2) -> None:
        """Blink a status LED `times` times in the background, ending off."""
        led = self._lights.get(name)
        if led is not None:
            with self._outputs:
                led.blink(on_time=on_s, off_time=off_s, n=times, background=True)

    def beep(self, times: int = 1, on_s: float = 0.08, off_s: float = 0.12) -> None:
        """Sound the buzzer `times` times in the background."""
        if self._buzzer is not None:
            with self._outputs:
                self._buzzer.beep(on_time=on_s, off_time=off_s, n=times, background=True)

    def close(self) -> None:
        """Release every pin."""
        with self._outputs:
            for device in [*self._buttons.values(), *self._lights.values(), self._buzzer]:
                if device is not None:
                    device.close()
        self._buttons.clear()
        self._lights.clear()
        self._buzzer = None
