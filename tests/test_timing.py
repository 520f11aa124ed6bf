"""The tests' one wait helper returns what it waited for and always ends; the manual clock."""

from __future__ import annotations

import threading
import time

from tests.timing import ManualClock, wait_until


def test_wait_until_returns_the_value_it_waited_for() -> None:
    box: list[str] = []
    threading.Timer(0.05, box.append, ["A001"]).start()
    assert wait_until(lambda: list(box), 5) == ["A001"]


def test_wait_until_ends_when_the_time_runs_out() -> None:
    started = time.monotonic()
    assert wait_until(lambda: 0, 0.1, step=0.02) == 0
    assert 0.1 <= time.monotonic() - started < 2


def test_manual_clock_moves_only_when_told() -> None:
    clock = ManualClock()
    before = clock()
    clock.now += 1.5
    assert clock() - before == 1.5
