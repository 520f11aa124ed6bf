"""Which presses become tickets: chatter, busy, double presses, and the priority pattern."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kiosk.presses import PressGate, PrioritySelector
from tests.timing import ManualClock


def test_chatter_is_ignored_and_a_press_while_busy_is_dropped() -> None:
    clock = ManualClock()
    gate = PressGate(bounce_s=0.05, lockout_s=1.0, clock=clock)
    assert gate.offer("ktp") == "accept" and gate.busy
    clock.now += 0.01
    assert gate.offer("ktp") == "bounce"  # contact bounce of the same press
    clock.now += 0.3
    assert gate.offer("ktp") == "busy"  # a second press while the first prints
    assert gate.offer("kk") == "busy"  # another service: still one ticket at a time
    gate.done()
    clock.now += 0.4
    assert gate.offer("kk") == "busy"  # within the lockout: the double press
    clock.now += 0.7
    assert gate.offer("kk") == "accept"


def test_bounce_window_follows_the_last_edge() -> None:
    clock = ManualClock()
    gate = PressGate(bounce_s=0.05, lockout_s=0.0, clock=clock)
    assert not gate.chatter("priority")
    for _ in range(5):  # a button chattering for 100 ms
        clock.now += 0.02
        assert gate.chatter("priority")
    clock.now += 0.2
    assert not gate.chatter("priority")


@given(st.lists(st.floats(min_value=0.0, max_value=0.9), min_size=1, max_size=30))
def test_any_burst_during_one_ticket_gives_one_accept(gaps: list[float]) -> None:
    clock = ManualClock()
    gate = PressGate(bounce_s=0.05, lockout_s=1.0, clock=clock)
    verdicts = []
    for gap in gaps:
        clock.now += gap
        verdicts.append(gate.offer("ktp"))
    assert verdicts.count("accept") == 1 and verdicts[0] == "accept"


def test_priority_button_steps_through_categories_and_expires() -> None:
    clock = ManualClock()
    priority = PrioritySelector(window_s=15.0, clock=clock)
    assert priority.current() is None
    assert priority.press() == "elderly"
    assert priority.press() == "disabled"
    assert priority.press() == "pregnant"
    assert priority.press() == "child"
    assert priority.press() == "elderly"
    clock.now += 14.0
    assert priority.take() == "elderly"
    assert priority.take() is None  # used once
    priority.press()
    clock.now += 15.0
    assert priority.take() is None  # expired: the next citizen gets a regular ticket


def test_touch_choice_toggles_and_rejects_unknown_categories() -> None:
    priority = PrioritySelector(clock=ManualClock())
    assert priority.choose("child") == "child"
    assert priority.choose("child") is None
    assert priority.current() is None
    with pytest.raises(ValueError, match="unknown priority 'vip'"):
        priority.choose("vip")
