"""Which SDL video drivers a display tries, and when it goes fullscreen."""

from __future__ import annotations

from pathlib import Path

from display.video import on_raspberry_pi, video_plan


def test_pi_console_tries_kms_first_and_goes_fullscreen() -> None:
    plan = video_plan({}, is_pi=True, fullscreen=None)
    assert plan.drivers == ("kmsdrm", "wayland", "x11") and plan.fullscreen


def test_desktop_gets_a_window_unless_asked() -> None:
    assert video_plan({"DISPLAY": ":0"}, is_pi=False, fullscreen=None).fullscreen is False
    assert video_plan({"DISPLAY": ":0"}, is_pi=False, fullscreen=True).fullscreen is True
    wayland = video_plan({"WAYLAND_DISPLAY": "wayland-0"}, is_pi=False, fullscreen=None)
    assert wayland.drivers == ("wayland", "x11")


def test_forced_driver_and_inventory_choice() -> None:
    plan = video_plan({"SDL_VIDEODRIVER": "dummy"}, is_pi=True, fullscreen=None)
    assert plan.drivers == ("dummy",) and not plan.fullscreen
    windowed = video_plan({}, is_pi=True, fullscreen=None, inventory_fullscreen=False)
    assert not windowed.fullscreen


def test_raspberry_pi_detection(tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.write_text("Raspberry Pi 5 Model B Rev 1.0\x00")
    assert on_raspberry_pi(model)
    model.write_text("QEMU Virtual Machine")
    assert not on_raspberry_pi(model)
    assert not on_raspberry_pi(tmp_path / "absent")
