"""Which SDL video drivers to try and whether to go fullscreen, on a Pi, a desktop or in tests.

plan = video_plan(os.environ, is_pi=on_raspberry_pi(), fullscreen=True)
plan.drivers     # ('kmsdrm', 'wayland', 'x11') on a Pi console; ('x11',) on a desktop
plan.fullscreen  # False on a desktop: a window the developer can move
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

PI_MODEL = Path("/proc/device-tree/model")


@dataclass(frozen=True)
class VideoPlan:
    """SDL video drivers to try in order, and the window mode."""

    drivers: tuple[str, ...]
    fullscreen: bool


def on_raspberry_pi(model_file: Path = PI_MODEL) -> bool:
    """True on a Raspberry Pi (its device tree names the model)."""
    try:
        return "Raspberry Pi" in model_file.read_text(errors="replace")
    except OSError:
        return False


def video_plan(
    env: Mapping[str, str],
    *,
    is_pi: bool,
    fullscreen: bool | None,
    inventory_fullscreen: bool = True,
) -> VideoPlan:
    """Drivers and mode for this machine.

    `fullscreen` is the command line's choice (None: decide here). SDL_VIDEODRIVER, when set,
    is the only driver tried (tests set it to 'dummy'). A Pi goes fullscreen as the inventory
    says; a desktop session gets a window unless asked otherwise.
    """
    forced = env.get("SDL_VIDEODRIVER", "").strip()
    desktop = bool(env.get("WAYLAND_DISPLAY") or env.get("DISPLAY"))
    if forced:
        drivers: tuple[str, ...] = (forced,)
    elif is_pi:
        drivers = ("kmsdrm", "wayland", "x11") if not desktop else ("wayland", "x11", "kmsdrm")
    elif env.get("WAYLAND_DISPLAY"):
        drivers = ("wayland", "x11")
    elif env.get("DISPLAY"):
        drivers = ("x11",)
    else:
        drivers = ("kmsdrm", "x11")
    if fullscreen is None:
        fullscreen = inventory_fullscreen and (is_pi or not desktop) and forced != "dummy"
    return VideoPlan(drivers, fullscreen)
