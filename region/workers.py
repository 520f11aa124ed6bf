"""The extra ingest workers of `mpp region run` (`[ingest] workers` > 1): one process each,
started, watched and stopped by the first.

A worker that exits is started again (after a pause that grows while it keeps failing);
each dies with the first process (the kernel's parent-death signal), so a restarted service
never finds old workers still holding their broker connections.

    pool = Workers(config_file, count=2, log_level="INFO").start()   # workers 1..count-1
    pool.watch()                                                    # now and then
    pool.stop()
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

log = logging.getLogger("mpp.region")

PR_SET_PDEATHSIG = 1
RESTART_MIN_S, RESTART_MAX_S = 1.0, 30.0


PARENT_ENV = "MPP_REGION_PARENT"


def die_with_parent() -> None:
    """In a worker: be sent SIGTERM when the first process goes; exit at once if it has
    gone already (the worker was started by a process that no longer exists)."""
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    expected = os.environ.get(PARENT_ENV)
    if expected is not None and os.getppid() != int(expected):
        raise SystemExit("the region service that started this worker has gone")


class Workers:
    """Ingest workers 1..count-1 as child processes (`mpp region run --worker N`)."""

    def __init__(self, config_file: str | Path, count: int, log_level: str = "INFO") -> None:
        self.config_file = str(config_file)
        self.count = count
        self.log_level = log_level
        self.processes: dict[int, subprocess.Popen[bytes]] = {}
        self._delay = dict.fromkeys(range(1, count), RESTART_MIN_S)
        self._due = dict.fromkeys(range(1, count), 0.0)

    def _command(self, index: int) -> list[str]:
        return [
            sys.executable, "-m", "protocol.cli", "region", "run", "--config", self.config_file,
            "--log-level", self.log_level, "--worker", str(index),
        ]  # fmt: skip

    def _spawn(self, index: int) -> None:
        self.processes[index] = subprocess.Popen(
            self._command(index), env={**os.environ, PARENT_ENV: str(os.getpid())}
        )
        log.info("ingest worker started", extra={"worker": index, "pid": self.processes[index].pid})

    def start(self) -> Workers:
        """Start every extra worker."""
        for index in range(1, self.count):
            self._spawn(index)
        return self

    def watch(self) -> None:
        """Start again any worker that has exited (not more often than its pause allows)."""
        now = time.monotonic()
        for index, process in list(self.processes.items()):
            code = process.poll()
            if code is None:
                if now - self._due[index] > 60:
                    self._delay[index] = RESTART_MIN_S  # up for a minute: forgiven
                continue
            if now < self._due[index]:
                continue
            log.error(
                "ingest worker exited; starting it again",
                extra={"worker": index, "status": code, "pause_s": self._delay[index]},
            )
            self._spawn(index)
            self._due[index] = now + self._delay[index]
            self._delay[index] = min(RESTART_MAX_S, self._delay[index] * 2)

    def stop(self, timeout: float = 15.0) -> None:
        """Ask every worker to stop (they store what they hold first); kill the late ones."""
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + timeout
        for process in self.processes.values():
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
