"""The kiosk's domain modules import without the hardware libraries (only the edges use them)."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT

HARDWARE = ("gpiozero", "pygame", "escpos", "pyttsx3", "RPLCD")
MODULES = (
    "kiosk.app",
    "kiosk.buttons",
    "kiosk.cli",
    "kiosk.errors",
    "kiosk.menu",
    "kiosk.notices",
    "kiosk.presses",
    "kiosk.preview",
    "kiosk.printer",
    "kiosk.ticket",
)


def test_every_kiosk_module_imports_without_hardware_libraries() -> None:
    code = (
        f"import sys, importlib; [importlib.import_module(n) for n in {MODULES!r}];"
        f"print([m for m in {HARDWARE!r} if m in sys.modules])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
