"""Which presses become ticket requests, and which priority a citizen asked for (pure logic).

Buttons chatter and citizens press twice; gpiozero's MockPin does not simulate bounce, and on
a fast printer a second press could arrive after the first ticket is already out. So the
kiosk applies its own rules to every input (GPIO button or touch):

* an edge of the same input within `bounce_s` of the previous one is chatter: ignored;
* while a ticket is being requested or printed, a press is answered "busy" and dropped
  (never queued);
* for `lockout_s` after a ticket, a press is still "busy": that is the double press.

Priority (UU 25/2009) is armed before the service is chosen: press PRIORITY once for
elderly (lansia), again within the window for the next category (disability, pregnant, child),
then press the service within `window_s`. On a touchscreen the category is tapped directly.

    gate = PressGate(clock=clock)
    gate.offer("ktp")     # 'accept'
    gate.offer("ktp")     # 'bounce' (or 'busy' after bounce_s)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Literal

from protocol.messages import PRIORITIES

Verdict = Literal["accept", "bounce", "busy"]


class PressGate:
    """One ticket at a time: filters chatter, drops presses while busy and double presses."""

    def __init__(
        self,
        *,
        bounce_s: float = 0.05,
        lockout_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.bounce_s = bounce_s
        self.lockout_s = lockout_s
        self.clock = clock
        self._last_edge: dict[str, float] = {}
        self._busy = False
        self._locked_until = float("-inf")
        self._lock = threading.Lock()

    def chatter(self, key: str) -> bool:
        """True if this edge of input `key` is bounce of the previous one (ignore it)."""
        now = self.clock()
        with self._lock:
            last = self._last_edge.get(key)
            self._last_edge[key] = now
            return last is not None and now - last < self.bounce_s

    def offer(self, key: str) -> Verdict:
        """Decide about a press of `key`; 'accept' makes the gate busy until `done()`."""
        if self.chatter(key):
            return "bounce"
        with self._lock:
            if self._busy or self.clock() < self._locked_until:
                return "busy"
            self._busy = True
            return "accept"

    def done(self) -> None:
        """The accepted press is finished (printed, refused or failed); lockout starts."""
        with self._lock:
            self._busy = False
            self._locked_until = self.clock() + self.lockout_s

    @property
    def busy(self) -> bool:
        """True while an accepted press is being served."""
        return self._busy


class PrioritySelector:
    """The priority category armed for the next service press, expiring after `window_s`."""

    def __init__(self, *, window_s: float = 15.0, clock: Callable[[], float] = time.monotonic):
        self.window_s = window_s
        self.clock = clock
        self._category: str | None = None
        self._until = float("-inf")
        self._lock = threading.Lock()

    def press(self) -> str:
        """The PRIORITY button: arm elderly, or step to the next category if already armed."""
        with self._lock:
            current = self._current()
            index = -1 if current is None else PRIORITIES.index(current)
            return self._arm(PRIORITIES[(index + 1) % len(PRIORITIES)])

    def choose(self, category: str | None) -> str | None:
        """Arm `category` (a touchscreen choice); None or the armed one again clears it."""
        with self._lock:
            if category is None or category == self._current():
                self._category = None
                return None
            if category not in PRIORITIES:
                raise ValueError(f"unknown priority {category!r}; one of {', '.join(PRIORITIES)}")
            return self._arm(category)

    def current(self) -> str | None:
        """The armed category, or None (never armed, used, or expired)."""
        with self._lock:
            return self._current()

    def armed(self) -> tuple[str, float] | None:
        """(category, seconds left in its window), or None: what a screen shows of it."""
        with self._lock:
            category = self._current()
            return None if category is None else (category, self._until - self.clock())

    def take(self) -> str | None:
        """The armed category for the press being served; disarms it."""
        with self._lock:
            category, self._category = self._current(), None
            return category

    def _current(self) -> str | None:
        if self._category is not None and self.clock() >= self._until:
            self._category = None
        return self._category

    def _arm(self, category: str) -> str:
        self._category = category
        self._until = self.clock() + self.window_s
        return category
