"""Press debouncing with a clock the test controls."""

from __future__ import annotations

import pytest

from caller.debounce import PressFilter


def test_bounce_and_double_press_within_the_window_are_one_press() -> None:
    presses = PressFilter(0.6)
    times = [10.0, 10.004, 10.011, 10.3, 10.59]
    assert [presses.accept("next", t) for t in times] == [True, False, False, False, False]
    assert presses.accept("next", 10.61)  # the window counts from the accepted press


def test_each_button_has_its_own_window() -> None:
    presses = PressFilter(0.6)
    assert presses.accept("recall", 5.0)
    assert presses.accept("next", 5.1)
    assert presses.accept("very_satisfied", 5.1)
    assert not presses.accept("next", 5.2)


def test_zero_window_accepts_every_press_and_negative_is_refused() -> None:
    presses = PressFilter(0)
    assert all(presses.accept("next", 1.0) for _ in range(3))
    with pytest.raises(ValueError, match="debounce window must be 0 s or more"):
        PressFilter(-0.1)
