"""Talk to systemd from a device service: readiness, watchdog pings and service credentials.

A unit with `Type=notify` and `WatchdogSec=` expects the service to say when it is ready and
then to ping regularly from its main loop; otherwise systemd restarts it. Outside systemd
(tests, a developer's shell) every call is a harmless no-op::

    from protocol import systemd
    systemd.notify("READY=1")
    pacer = systemd.WatchdogPacer()
    while running:
        ...
        pacer.ping(time.monotonic())      # sends WATCHDOG=1 at most every half interval

Implements the sd_notify datagram protocol itself (a few lines), so no dependency is needed.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from pathlib import Path

BROKER_PASSWORD_CREDENTIAL = "mpp-broker-password"


def _address(environ: Mapping[str, str]) -> str | None:
    address = environ.get("NOTIFY_SOCKET")
    if not address or address[0] not in "/@":
        return None
    # A leading '@' names a socket in the abstract namespace.
    return "\0" + address[1:] if address[0] == "@" else address


def notify(state: str, environ: Mapping[str, str] | None = None) -> bool:
    """Send `state` (e.g. "READY=1", "STATUS=...") to systemd; False when not under systemd."""
    address = _address(os.environ if environ is None else environ)
    if address is None:
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
        try:
            sock.sendto(state.encode(), address)
        except OSError:
            return False
    return True


def watchdog_interval(environ: Mapping[str, str] | None = None) -> float | None:
    """The unit's WatchdogSec in seconds when systemd watches this process, else None."""
    environ = os.environ if environ is None else environ
    usec, pid = environ.get("WATCHDOG_USEC"), environ.get("WATCHDOG_PID")
    if not usec or not usec.isdigit() or int(usec) == 0:
        return None
    if pid and pid.isdigit() and int(pid) != os.getpid():
        return None
    return int(usec) / 1_000_000


def watchdog_ping(environ: Mapping[str, str] | None = None) -> bool:
    """Tell systemd this process is alive (WATCHDOG=1)."""
    return notify("WATCHDOG=1", environ)


class WatchdogPacer:
    """Pings the watchdog from a main loop at half the configured interval, not every turn."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = os.environ if environ is None else environ
        interval = watchdog_interval(self._environ)
        self.every = interval / 2 if interval else None
        self._last: float | None = None

    def ping(self, now: float) -> bool:
        """Ping if half the watchdog interval passed since the last ping; True when sent."""
        if self.every is None:
            return False
        if self._last is not None and now - self._last < self.every:
            return False
        self._last = now
        return watchdog_ping(self._environ)


def credential(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    """A secret systemd passed with `LoadCredential=name:...`, or None outside such a unit."""
    directory = (os.environ if environ is None else environ).get("CREDENTIALS_DIRECTORY")
    if not directory:
        return None
    path = Path(directory) / name
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError:
        return None


def broker_login(device: str, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Bus keyword arguments (username, password) for `device` under its provisioned unit.

    Empty outside systemd, so a developer's broker without passwords still works::

        Bus.for_device(site, "caller-03", **systemd.broker_login("caller-03"))
    """
    password = credential(BROKER_PASSWORD_CREDENTIAL, environ)
    return {} if password is None else {"username": device, "password": password}
