"""Whether the hub may believe its wall clock, before it hands out numbers with it.

A Raspberry Pi has no battery clock: until NTP sets it, it runs from whatever time it booted
with (often hours off). A hub that issued on such a clock numbered tickets on the wrong day and
numbered them again once the clock was fixed: two citizens with one number. So the hub issues
only while its clock is trustworthy: synchronised by NTP, or later than everything it has
already committed (a clock behind its own records is certainly wrong).

    trust = ClockTrust(floor=store.last_committed_at())
    trust.trusted(time.time())          # False: refuse tickets, tell kiosks and screens
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Callable

_STA_UNSYNC = 0x0040
_MAX_ERROR_US = 16_000_000  # the kernel's NTP_PHASE_LIMIT: beyond it the clock is unsynchronised


class _Timeval(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long)]


class _Timex(ctypes.Structure):
    """struct timex of adjtimex(2) (Linux; the same layout on x86_64 and aarch64)."""

    _fields_ = [
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("constant", ctypes.c_long),
        ("precision", ctypes.c_long),
        ("tolerance", ctypes.c_long),
        ("time", _Timeval),
        ("tick", ctypes.c_long),
        ("ppsfreq", ctypes.c_long),
        ("jitter", ctypes.c_long),
        ("shift", ctypes.c_int),
        ("stabil", ctypes.c_long),
        ("jitcnt", ctypes.c_long),
        ("calcnt", ctypes.c_long),
        ("errcnt", ctypes.c_long),
        ("stbcnt", ctypes.c_long),
        ("tai", ctypes.c_int),
        ("_reserved", ctypes.c_int * 11),
    ]


@functools.cache
def _libc() -> ctypes.CDLL:
    """The C library the interpreter itself links, once: no ctypes.util.find_library, which
    runs `ldconfig -p` in a new process each time (the hub asks on every issue)."""
    return ctypes.CDLL(None, use_errno=True)


def ntp_synchronized() -> bool | None:
    """True when the kernel says an NTP client (systemd-timesyncd, chrony, ntpd) keeps the
    clock synchronised: what `timedatectl show -p NTPSynchronized` reports, read directly
    (adjtimex(2), read-only) so it needs neither D-Bus nor systemd. None: cannot be known here."""
    try:
        timex = _Timex()  # modes = 0: only read
        if _libc().adjtimex(ctypes.byref(timex)) < 0:
            return None
    except (OSError, AttributeError):
        return None
    return not timex.status & _STA_UNSYNC and timex.maxerror < _MAX_ERROR_US


class ClockTrust:
    """The hub's judgement of its wall clock: trusted when NTP keeps it synchronised, or when
    it reads later than the last moment the hub committed anything (`floor`)."""

    def __init__(
        self, floor: float = 0.0, synchronized: Callable[[], bool | None] = ntp_synchronized
    ) -> None:
        self.floor = floor
        self.synchronized = synchronized

    def committed(self, at: float) -> None:
        """The hub committed something stamped `at`: the clock must not be behind it."""
        self.floor = max(self.floor, at)

    def trusted(self, now: float) -> bool:
        """Whether tickets may be issued on the wall clock reading `now`."""
        return self.synchronized() is True or now >= self.floor
