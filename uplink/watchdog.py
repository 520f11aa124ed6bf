"""Keep the uplink broker answering: run it, probe it, and restart it when it hangs.

Mosquitto 2.0.11 can hang in its bridge code when the WAN misbehaves (docs/region.md): the
process spins and answers nobody, and it ignores SIGTERM. systemd alone cannot see that (the
process is alive), so `mpp uplink` runs the uplink broker as its child and asks it every few
seconds for a CONNACK on its loopback listener. An MQTT CONNECT without credentials is
refused ("not authorised") by a live broker, which is all the probe needs: no account, no
secret. After `misses` probes in a row without an answer the broker is killed (SIGKILL: a
hung Mosquitto does not act on SIGTERM) and started again. Only uploads pause meanwhile;
the hub's outbox sends again from the region's acknowledgement.

    watchdog = UplinkWatchdog(Path("/etc/mosquitto/mpp-uplink/mosquitto.conf"))
    watchdog.run(stop_event)        # until stop_event is set; systemd pings while healthy

`mpp uplink` is itself a `Type=notify` service with `WatchdogSec=`: it pings systemd only
after a probe answered, so a watchdog that hung is restarted by systemd in turn.
"""

from __future__ import annotations

import logging
import re
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from protocol import systemd
from protocol.errors import MppError

log = logging.getLogger("mpp.uplink")

# MQTT 3.1.1 CONNECT: clean session, keepalive 5 s, client id "uplink-watchdog", no login.
_CLIENT_ID = b"uplink-watchdog"
_VARIABLE = b"\x00\x04MQTT\x04\x02\x00\x05" + len(_CLIENT_ID).to_bytes(2, "big") + _CLIENT_ID
CONNECT = bytes([0x10, len(_VARIABLE)]) + _VARIABLE
CONNACK = 0x20
LISTENER_RE = re.compile(r"^listener\s+(\d+)\s+127\.0\.0\.1\s*$", re.MULTILINE)


class UplinkError(MppError, RuntimeError):
    """The uplink broker cannot be run (no mosquitto, no configuration, no loopback port)."""


def answers(port: int, timeout: float = 2.0, host: str = "127.0.0.1") -> bool:
    """True when an MQTT broker on host:port sends a CONNACK (any reason code) in time."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            sock.sendall(CONNECT)
            first = sock.recv(1)
    except OSError:
        return False
    return first[:1] == bytes([CONNACK])


def probe_port(config: Path) -> int:
    """The loopback listener's port in the uplink broker's configuration."""
    try:
        text = config.read_text(encoding="utf-8")
    except OSError as exc:
        raise UplinkError(
            f"{config}: cannot read the uplink broker's configuration ({exc.strerror}); "
            "install the files `mpp-provision broker --bridge` wrote"
        ) from None
    found = LISTENER_RE.search(text)
    if found is None:
        raise UplinkError(
            f"{config}: no `listener PORT 127.0.0.1` line; the watchdog probes that listener "
            "(regenerate the file with `mpp-provision broker --bridge`)"
        )
    return int(found.group(1))


@dataclass
class UplinkWatchdog:
    """Runs `mosquitto -c config` and restarts it when it dies or stops answering."""

    config: Path
    probe_every_s: float = 2.0
    probe_timeout_s: float = 2.0
    misses: int = 3
    start_timeout_s: float = 10.0
    binary: str | None = None
    log_path: Path | None = None  # the broker's output (default: this process's stderr)
    restarts: int = 0  # how often the broker was started again (hung or died)
    hangs: int = 0  # how many of those because it stopped answering
    process: subprocess.Popen[bytes] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.port = probe_port(self.config)
        self.binary = self.binary or shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not Path(self.binary).exists():
            raise UplinkError("mosquitto is not installed; `apt-get install mosquitto`")

    def start(self) -> None:
        """Start the broker (it logs to the inherited stderr)."""
        output = None if self.log_path is None else self.log_path.open("ab")
        try:
            with self._lock:
                self.process = subprocess.Popen(
                    [str(self.binary), "-c", str(self.config)], stdout=output, stderr=output
                )
        finally:
            if output is not None:
                output.close()
        log.info("uplink broker started", extra={"pid": self.process.pid, "port": self.port})

    def kill(self) -> None:
        """SIGKILL the broker and reap it (a hung Mosquitto ignores SIGTERM)."""
        with self._lock:
            process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(10)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it has not ended within 5 s."""
        with self._lock:
            process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            log.warning("uplink broker ignored SIGTERM; killing it", extra={"pid": process.pid})
            process.kill()
            process.wait(10)

    def _wait_ready(self, stop: threading.Event) -> bool:
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline and not stop.is_set():
            if answers(self.port, self.probe_timeout_s):
                return True
            if self.process is not None and self.process.poll() is not None:
                return False
            stop.wait(0.1)
        return False

    def run(self, stop: threading.Event) -> None:
        """Supervise until `stop` is set; then stop the broker."""
        pacer = systemd.WatchdogPacer()
        backoff = 1.0
        ready_told = False
        try:
            while not stop.is_set():
                self.start()
                if not self._wait_ready(stop):
                    if stop.is_set():
                        break
                    code = self.process.poll() if self.process else None
                    log.error(
                        "uplink broker did not answer after starting; starting it again",
                        extra={"exit_code": code, "wait_s": backoff},
                    )
                    self.kill()
                    self.restarts += 1
                    stop.wait(backoff)
                    backoff = min(30.0, backoff * 2)
                    continue
                backoff = 1.0
                if not ready_told:
                    systemd.notify("READY=1")
                    ready_told = True
                pacer.ping(time.monotonic())
                self._watch(stop, pacer)
        finally:
            self.stop()

    def _watch(self, stop: threading.Event, pacer: systemd.WatchdogPacer) -> None:
        """Probe until the broker dies or misses `misses` probes in a row; then kill it."""
        missed = 0
        while not stop.wait(self.probe_every_s):
            process = self.process
            if process is None or process.poll() is not None:
                log.error(
                    "uplink broker ended; starting it again",
                    extra={"exit_code": None if process is None else process.returncode},
                )
                self.restarts += 1
                return
            if answers(self.port, self.probe_timeout_s):
                missed = 0
                pacer.ping(time.monotonic())
                continue
            missed += 1
            if missed >= self.misses:
                log.error(
                    "uplink broker stopped answering; killing it and starting it again "
                    "(uploads resume from the region's acknowledgement)",
                    extra={"pid": process.pid, "missed_probes": missed},
                )
                self.kill()
                self.restarts += 1
                self.hangs += 1
                return
