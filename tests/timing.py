"""Time in tests: wait for what should happen (never a fixed sleep), and clocks a test moves.

assert wait_until(lambda: box.display.text == "Loket 3 - A001", 5)
clock = ManualClock(); app = KioskApp(..., clock=clock); clock.now += 1.0
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(condition: Callable[[], T], timeout: float = 5.0, step: float = 0.01) -> T:
    """Poll `condition` until it returns something truthy or `timeout` seconds passed.

    Returns its last value, so `assert wait_until(...)` fails when the time ran out and
    `rows = wait_until(lambda: fetch_rows())` keeps what it waited for. Bounded: it always ends.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(step)


class ManualClock:
    """A monotonic clock the test moves by hand (`clock.now += 1.5`), for code that takes a
    `clock` callable: lockouts, debounce, windows, notices."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
