"""Errors of the display part, with messages a technician can act on."""

from __future__ import annotations

from protocol.errors import MppError


class DisplayError(MppError):
    """Base of the display's errors."""


class ScreenError(DisplayError, RuntimeError):
    """No video driver could open the screen."""


class AudioError(DisplayError, RuntimeError):
    """The speakers (pygame.mixer) could not be opened or a sound could not be played."""


class SpeechError(DisplayError, RuntimeError):
    """Speech synthesis (pyttsx3 / espeak-ng) failed or a voice is missing."""


class NotADisplay(DisplayError, ValueError):
    """The device named on the command line is not a display of the inventory."""


class ImageRefused(DisplayError, OSError):
    """A featured-product image could not be downloaded, or what came is not the image the hub
    announced (wrong address, too large, wrong hash)."""
