"""The kiosk's errors: what went wrong with its printer, panel or configuration.

Each printer error carries the `state` the kiosk reports in its retained health message
(`Health.printer`), so the edge that catches it can report without guessing.
"""

from __future__ import annotations

from protocol.errors import MppError


class KioskError(MppError):
    """Base of the kiosk's own errors."""


class KioskConfigError(KioskError, ValueError):
    """The inventory entry of this kiosk cannot work as written (printer, profile, pins...)."""


class PrinterError(KioskError):
    """The ticket did not come out of the printer; `state` is the health value to report."""

    state = "error"


class PrinterOffline(PrinterError, ConnectionError):
    """The printer cannot be reached (unplugged, switched off, wrong address or device)."""

    state = "offline"


class PaperOut(PrinterError):
    """The printer reports that its paper roll is empty."""

    state = "paper_out"


class PrintFailed(PrinterError):
    """Sending the ticket to a reachable printer failed part-way (cable, jam, driver error)."""

    state = "error"


class PanelError(KioskError):
    """A button, LED or buzzer of the kiosk cannot be set up on its GPIO pin."""
