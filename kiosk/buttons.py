"""The kiosk's physical panel on GPIO: the one module that imports gpiozero (lazily).

Service buttons and the PRIORITY button come from the device's inventory entry; LEDs show
ready / busy / fault and an optional buzzer beeps. Devices ask a pin factory for their pins,
so tests pass `MockFactory()` and press with `factory.pin(5).drive_low()`::

    panel = KioskPanel(site.devices["kiosk-3"], pin_factory=MockFactory())
    panel.on_press(print)           # prints 'ktp' when the button on GPIO5 is pressed
    panel.indicate("busy")

Chatter and double presses are filtered by the app (`kiosk.presses`), not here: gpiozero's
bounce_time is not simulated by MockPin and would hide the behaviour from tests.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any, Literal

from kiosk.errors import PanelError
from protocol.site import KioskDevice, Pin

log = logging.getLogger("mpp.kiosk")

PRIORITY = "priority"  # the key the PRIORITY button reports
State = Literal["ready", "busy", "fault", "offline", "priority"]
Beep = Literal["ok", "refused", "busy", "fault"]
BEEPS: dict[str, tuple[float, float, int]] = {  # on, off, count
    "ok": (0.1, 0.1, 1),
    "busy": (0.05, 0.05, 1),
    "refused": (0.3, 0.2, 2),
    "fault": (0.5, 0.25, 3),
}


class KioskPanel:
    """Buttons, LEDs and buzzer of one kiosk, built from its inventory entry."""

    def __init__(
        self, device: KioskDevice, *, pin_factory: Any = None, device_id: str = "kiosk"
    ) -> None:
        try:
            import gpiozero
        except ImportError as exc:  # pragma: no cover - a dependency of the package
            raise PanelError(f"gpiozero is not installed ({exc}); pip install gpiozero") from None
        self._gpiozero = gpiozero
        self.device_id = device_id
        self.pin_factory = pin_factory
        self._callback: Callable[[str], None] | None = None
        self._devices: list[Any] = []
        # LEDs and buzzer are driven from several threads (presses, the kiosk's worker, the
        # broker connection); gpiozero's blink/beep threads must not be started and stopped
        # concurrently.
        self._lock = threading.RLock()
        self.buttons: dict[str, Any] = {}
        self.leds: dict[str, Any] = {}
        self.buzzer: Any = None
        try:
            for code, pin in device.buttons.items():
                self.buttons[code] = self._button(f"buttons.{code}", pin, code)
            if device.priority_button is not None:
                self.buttons[PRIORITY] = self._button(
                    "priority_button", device.priority_button, PRIORITY
                )
            for name in ("ready", "busy", "fault"):
                pin = getattr(device.leds, name)
                if pin is not None:
                    self.leds[name] = self._output(gpiozero.LED, f"leds.{name}", pin)
            if device.buzzer is not None:
                self.buzzer = self._output(gpiozero.Buzzer, "buzzer", device.buzzer)
        except PanelError:
            self.close()
            raise

    def _make(self, cls: Any, key: str, pin: Pin, **kwargs: Any) -> Any:
        try:
            made = cls(pin, pin_factory=self.pin_factory, **kwargs)
        except self._gpiozero.GPIOZeroError as exc:
            raise PanelError(
                f"devices.{self.device_id}.{key}: GPIO pin {pin!r} cannot be used: {exc}; "
                "check the wiring and the inventory (on a PC set GPIOZERO_PIN_FACTORY=mock)"
            ) from None
        self._devices.append(made)
        return made

    def _button(self, key: str, pin: Pin, code: str) -> Any:
        button = self._make(self._gpiozero.Button, key, pin, pull_up=True)
        button.when_pressed = lambda: self._pressed(code)
        return button

    def _output(self, cls: Any, key: str, pin: Pin) -> Any:
        return self._make(cls, key, pin)

    def _pressed(self, code: str) -> None:
        callback = self._callback
        if callback is None:
            return
        try:
            callback(code)
        except Exception:
            log.exception("press handler failed", extra={"device": self.device_id, "button": code})

    def on_press(self, callback: Callable[[str], None]) -> None:
        """Call `callback(service_code)` on a press (or 'priority' for the PRIORITY button)."""
        self._callback = callback

    def indicate(self, state: State) -> None:
        """Set the LEDs: ready, busy, fault (steady), offline (fault blinks), priority armed."""
        with self._lock:
            if self._devices:  # not closed
                self._indicate(state)

    def _indicate(self, state: State) -> None:
        ready, busy, fault = (self.leds.get(name) for name in ("ready", "busy", "fault"))
        wanted = {
            "ready": ("on", "off", "off"),
            "busy": ("off", "on", "off"),
            "fault": ("off", "off", "on"),
            "offline": ("off", "off", "blink"),
            "priority": ("blink", "off", "off"),
        }[state]
        for led, mode in zip((ready, busy, fault), wanted, strict=True):
            if led is None:
                continue
            if mode == "blink":
                led.blink(on_time=0.25, off_time=0.25, background=True)
            elif mode == "on":
                led.on()
            else:
                led.off()

    def beep(self, pattern: Beep | int) -> None:
        """Sound the buzzer (if fitted): a named pattern, or N short beeps."""
        if self.buzzer is None:
            return
        on, off, count = BEEPS[pattern] if isinstance(pattern, str) else (0.1, 0.15, pattern)
        with self._lock:
            if self._devices:  # not closed
                self.buzzer.beep(on_time=on, off_time=off, n=count, background=True)

    def led_states(self) -> dict[str, bool]:
        """Which LEDs are lit right now (for status pages and tests)."""
        return {name: bool(led.is_lit) for name, led in self.leds.items()}

    def close(self) -> None:
        """Release every pin."""
        with self._lock:
            for made in reversed(self._devices):
                with contextlib.suppress(Exception):
                    made.close()
            self._devices.clear()
