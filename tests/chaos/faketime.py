"""A wall clock the test steps, for a process run under libfaketime (Debian's `libfaketime`).

The process reads its offset from a file on every call (FAKETIME_NO_CACHE), so the test steps
the clock while the process runs, as NTP or a technician would; the monotonic clock is left
alone (FAKETIME_DONT_FAKE_MONOTONIC), as a real clock step leaves it.

    clock = FakeClock(tmp_path / "faketime.rc")
    clock.set(at(site, "2026-12-08 23:59:50"))  # local time at the site
    proc = subprocess.Popen(cmd, env=clock.env())
    clock.step(-3600)                     # the process's wall clock goes back an hour
"""

from __future__ import annotations

import glob
import os
import time
from datetime import datetime
from pathlib import Path

import pytest

from protocol.site import Site


def at(site: Site, local: str) -> float:
    """Epoch seconds of a local wall-clock time at the site, e.g. '2026-12-08 23:59:50'."""
    return datetime.fromisoformat(local).replace(tzinfo=site.site.tz).timestamp()


def libfaketime() -> str:
    """The multi-threaded libfaketime of this machine (the test is skipped without it)."""
    found = sorted(glob.glob("/usr/lib/*/faketime/libfaketimeMT.so.1"))
    if not found:
        pytest.skip("libfaketime is not installed (Debian package libfaketime; see dev.sh)")
    return found[0]


class FakeClock:
    """The wall clock of the processes started with `env()`: an offset from the real one."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.library = libfaketime()
        self.offset = 0.0
        self._write()

    def _write(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(f"{self.offset:+.3f}\n", encoding="ascii")
        tmp.replace(self.path)  # a reader never sees a half-written offset

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """The environment of a process on this clock."""
        return {
            **(os.environ if base is None else base),
            "LD_PRELOAD": self.library,
            "FAKETIME_TIMESTAMP_FILE": str(self.path),
            "FAKETIME_NO_CACHE": "1",
            "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        }

    def now(self) -> float:
        """The faked wall clock now (epoch seconds)."""
        return time.time() + self.offset

    def set(self, moment: float) -> None:
        """Step the clock so that it reads `moment` now."""
        self.offset = moment - time.time()
        self._write()

    def step(self, seconds: float) -> None:
        """Step the clock by `seconds` (negative: back)."""
        self.offset += seconds
        self._write()
