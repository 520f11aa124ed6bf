"""Run tests as if the example site's local time were another hour of the day.

CI runs the suite at whatever hour a session stops. A test that passes at 10:00 and fails
after the 14:00 cut-off, before opening or across the local midnight depends on the wall clock:
this script finds it. It moves the example site to the time zone whose local time now is the
hour asked for (`Etc/GMT-N`, set through MPP_TEST_TIMEZONE, which `tests.conftest.example_text`
applies), so every process the tests start sees the same real clock and the shifted local day.
(libfaketime cannot do this for a whole suite: with the monotonic clock faked, Python's timed
waits never end; without, its time.sleep fails with EINVAL; libfaketime 0.9.10.)

    .venv/bin/python -m tests.wallclock                        # the usual hours, time-sensitive tests
    .venv/bin/python -m tests.wallclock --at 23:50 -- tests/hub -x -q

Each run is bounded (`--timeout`, per hour); the exit status is non-zero if any failed. Whole
hours only, and the weekday moves by at most one (the offsets are -12..+14 hours).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENV = "MPP_TEST_TIMEZONE"

# Local hours that have broken tests: after the cut-offs, after closing, before midnight,
# just after it, before opening.
HOURS = {
    "14:30": "after most services' ticket cut-offs",
    "17:50": "after closing time",
    "23:50": "closed; the business day rolls over mid-run",
    "00:10": "closed; a new business day just began",
    "06:00": "before opening (07:30)",
}

# The tests that start the example site: where a dependence on the wall clock can hide.
SUBSET = [
    "tests/hub", "tests/kiosk", "tests/caller", "tests/display", "tests/web",
    "tests/provisioning", "tests/demo", "tests/region", "tests/protocol",
]  # fmt: skip


def zone_for(hhmm: str, now: datetime | None = None) -> tuple[str, datetime]:
    """The `Etc/GMT-N` zone whose local time now is `hhmm` or up to an hour later, and that
    local time."""
    now = now or datetime.now(UTC)
    hour, minute = map(int, hhmm.split(":"))
    wanted = hour * 60 + minute
    current = now.hour * 60 + now.minute
    offset = -(-((wanted - current + 720) % 1440 - 720) // 60)  # whole hours, rounded up
    if offset < -12:
        offset += 24
    elif offset > 14:
        offset -= 24
    name = "Etc/UTC" if offset == 0 else f"Etc/GMT{'-' if offset > 0 else '+'}{abs(offset)}"
    return name, now + timedelta(hours=offset)


def run_bounded(command: list[str], env: dict[str, str], timeout: float) -> int | None:
    """Run pytest in its own process group; past `timeout` interrupt it (its fixtures stop
    their brokers, hubs and databases), then kill what is left. None: it timed out."""
    process = subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)
    try:
        return process.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        return None
    except KeyboardInterrupt:
        os.killpg(process.pid, signal.SIGINT)
        process.wait(30)
        raise


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--at", action="append", help="a local hour HH:MM (repeatable)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per hour")
    parser.add_argument("pytest_args", nargs="*", help="after --: what pytest runs")
    args = parser.parse_args(argv)
    failed = []
    for hhmm in args.at or list(HOURS):
        zone, local = zone_for(hhmm)
        print(f"== {hhmm}: the site's clock reads {local:%a %H:%M} ({zone})", flush=True)
        command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider"]
        command += args.pytest_args or ["-q", *SUBSET]
        code = run_bounded(command, {**os.environ, ENV: zone}, args.timeout)
        if code is None:
            print(f"== {hhmm}: stopped after {args.timeout:.0f} s", flush=True)
        if code != 0:
            failed.append(hhmm)
    print("== failed at: " + (", ".join(failed) if failed else "none"), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
