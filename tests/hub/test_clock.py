"""The hub's judgement of its wall clock (hub/clock.py)."""

from __future__ import annotations

from hub.clock import ClockTrust, ntp_synchronized


def test_trusted_when_ntp_says_so_or_not_behind_the_last_record() -> None:
    unsynced = ClockTrust(floor=1000.0, synchronized=lambda: False)
    assert not unsynced.trusted(999.0) and unsynced.trusted(1000.0)
    unsynced.committed(2000.0)
    unsynced.committed(1500.0)  # the floor only rises
    assert unsynced.floor == 2000.0 and not unsynced.trusted(1999.0)
    unknown = ClockTrust(floor=1000.0, synchronized=lambda: None)
    assert not unknown.trusted(999.0) and unknown.trusted(1001.0)
    assert ClockTrust(floor=1000.0, synchronized=lambda: True).trusted(0.0)


def test_the_kernel_is_asked_without_systemd() -> None:
    # adjtimex(2) answers in any Linux container; its value depends on the machine's NTP.
    assert ntp_synchronized() in (True, False)
