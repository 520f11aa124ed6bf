"""Press debouncing: contact bounce and a nervous double press count as one press."""

from __future__ import annotations

import threading


class PressFilter:
    """Accepts a button's press only if its previous accepted press is `window_s` old.

    Each button has its own window, so NEXT right after RECALL is two presses, while
    NEXT-NEXT within the window is one. The clock is passed in (monotonic seconds).

        presses = PressFilter(0.6)
        presses.accept("next", 10.0)   # True
        presses.accept("next", 10.3)   # False: within 0.6 s of the accepted press
        presses.accept("next", 10.7)   # True
    """

    def __init__(self, window_s: float) -> None:
        if window_s < 0:
            raise ValueError(f"debounce window must be 0 s or more, got {window_s}")
        self.window_s = window_s
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()

    def accept(self, button: str, now: float) -> bool:
        """True for a new press; False for a bounce or a repeat within the window."""
        with self._lock:
            last = self._last.get(button)
            if last is not None and now - last < self.window_s:
                return False
            self._last[button] = now
            return True
