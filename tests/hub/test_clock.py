"""The hub's judgement of its wall clock (hub/clock.py)."""

from __future__ import annotations

import subprocess

import pytest

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


def test_asking_the_kernel_starts_no_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """The hub asks on every issue: ctypes.util.find_library ran `ldconfig -p` each time."""

    def no_process(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"a process was started: {args}")

    monkeypatch.setattr(subprocess.Popen, "__init__", no_process)
    assert [ntp_synchronized() for _ in range(3)] in ([True] * 3, [False] * 3)
