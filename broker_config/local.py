"""Run the site broker from generated files on this machine (tests, benchmarks, a demo server).

Does what broker_config/README.md tells the technician to do on the site server: the files
belong to root with the `mosquitto` group, the persistence directory to `mosquitto`, so the
broker starts as root and drops to its own user exactly as under systemd.

    with site_broker(out_dir, loopback_port=layout.loopback_port) as broker:
        ...
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from broker_config.files import CONF, PASSWD, PRIVATE
from protocol.brokers import Mosquitto
from uplink.watchdog import UplinkWatchdog, answers

# A log line reporting trouble; Mosquitto 2.0 writes "Error:" / "Warning:" after the time.
TROUBLE_RE = re.compile(r"\b(error|warning)\b", re.IGNORECASE)


def hand_to_mosquitto(directory: str | Path, data_dir: str | Path | None = None) -> None:
    """Give the broker's group read access to `directory`, as the install step does.

    A no-op for everything but modes when not root (the broker then runs as this user).
    """
    directory = Path(directory)
    gid = uid = None
    if os.geteuid() == 0:
        with contextlib.suppress(KeyError):
            gid = grp.getgrnam("mosquitto").gr_gid
            uid = pwd.getpwnam("mosquitto").pw_uid
    for path in [directory, *directory.iterdir()]:
        if path.is_dir():
            path.chmod(0o750)
        elif path.name in PRIVATE or path.name == PASSWD:
            path.chmod(0o640)
        if gid is not None:
            os.chown(path, 0, gid)
    if data_dir is not None:
        data = Path(data_dir)
        data.mkdir(parents=True, exist_ok=True)
        data.chmod(0o700)
        if uid is not None and gid is not None:
            os.chown(data, uid, gid)


@contextlib.contextmanager
def site_broker(directory: str | Path, loopback_port: int) -> Iterator[Mosquitto]:
    """Start Mosquitto from `directory/mosquitto.conf`; stop it afterwards."""
    directory = Path(directory)
    broker = Mosquitto(
        port=loopback_port,
        config=(directory / CONF).read_text(encoding="utf-8"),
        workdir=directory / "run",
    )
    broker.workdir.chmod(0o755)
    try:
        broker.start()
        # The port opens before Mosquitto installs its signal handlers; a SIGHUP (reload) in
        # between would end it. It logs "running" once they are in place.
        deadline = time.monotonic() + 5
        while " running" not in broker.log() and time.monotonic() < deadline:
            time.sleep(0.01)
        yield broker
    finally:
        broker.close()


def trouble(log: str) -> list[str]:
    """The lines of a broker log that report an error or a warning."""
    return [line for line in log.splitlines() if TROUBLE_RE.search(line)]


@contextlib.contextmanager
def uplink_broker(directory: str | Path, **options: Any) -> Iterator[UplinkWatchdog]:
    """Run the uplink broker from `directory/mosquitto.conf` under its watchdog (a thread, as
    `mpp uplink` runs it), logging to `directory/uplink.log`; stop both afterwards."""
    directory = Path(directory)
    hand_to_mosquitto(directory)
    watchdog = UplinkWatchdog(directory / CONF, log_path=directory / "uplink.log", **options)
    stop = threading.Event()
    thread = threading.Thread(target=watchdog.run, args=(stop,), name="uplink-watchdog")
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not answers(watchdog.port, 0.5) and time.monotonic() < deadline:
            time.sleep(0.05)
        yield watchdog
    finally:
        stop.set()
        thread.join(30)
