"""Shared helpers of the reliability (chaos) suite.

Sizes scale with MPP_CHAOS_SCALE (default 1 = the sizes of issue 11). The hub runs as a real
process (`mpp hub`) so it can be killed; a site with ten button kiosks writing to file
printers; dumps of the hub's database and retained state; the numbers a kiosk's printer really
printed, read back from the ESC/POS bytes.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from protocol import messages as m
from protocol.mqtt import Bus, Incoming
from protocol.site import Site
from tests.chaos.netns import Link, device_link
from tests.conftest import ROOT, site_text
from tests.kiosk.escpos_bytes import parse as parse_escpos

SCALE = float(os.environ.get("MPP_CHAOS_SCALE", "1"))
KIOSK_PINS = (5, 6, 13, 19, 17, 27, 22, 23)  # eight service buttons per chaos kiosk
HUB_ROWS = ("counter_state", "service_state", "site_state", "alert")
HUB_COMMAND = (sys.executable, "-m", "protocol.cli", "hub")
KIOSK_COMMAND = (sys.executable, "-m", "tests.chaos.kiosk_process")
LABEL = re.compile(r"[A-Z]{1,2}[0-9]{3}")


def scaled(full: int, minimum: int = 1) -> int:
    """`full` (the issue's size) times MPP_CHAOS_SCALE, at least `minimum`."""
    return max(minimum, round(full * SCALE))


# -- the site --------------------------------------------------------------------------------
def chaos_kiosk_id(index: int) -> str:
    """The inventory id of chaos kiosk number `index` (0-based)."""
    return f"chaos-kiosk-{index + 1:02d}"


def chaos_site_text(
    port: int, database: Path, printers: Path, kiosks: int = 10, printer: str = "file"
) -> str:
    """The example site, open at any hour, every quota at the 999 a number allows, plus
    `kiosks` button kiosks; kiosk i offers 8 services starting at the (2i)-th, so each service
    is on four kiosks and presses for it race. Printers write ESC/POS to printers/{id}.escpos
    (`printer="file"`) or keep it in memory (`"dummy"`)."""
    # These kiosks print and report it, so the hub's hold on unprinted tickets is the
    # production default: a ticket stored just before a crash waits for its kiosk's cancel.
    text = site_text(port, always_open=True, database=database, unprinted_hold_s=20)
    text = re.sub(r"(?m)^daily_quota = \d+$", "daily_quota = 999", text)
    services = re.findall(r"(?m)^\[services\.([a-z0-9_-]+)\]$", text)[:20]
    printers.mkdir(parents=True, exist_ok=True)
    blocks = []
    for i in range(kiosks):
        device = chaos_kiosk_id(i)
        codes = [services[(2 * i + j) % len(services)] for j in range(len(KIOSK_PINS))]
        buttons = ", ".join(f"{c} = {p}" for c, p in zip(codes, KIOSK_PINS, strict=True))
        where = f', path = "{printers / device}.escpos"' if printer == "file" else ""
        blocks.append(
            f'\n[devices.{device}]\nrole = "kiosk"\nzone = "entrance"\n'
            f"buttons = {{ {buttons} }}\nleds = {{ ready = 16, busy = 20, fault = 21 }}\n"
            f'printer = {{ connection = "{printer}"{where}, profile = "TM-T20II" }}\n'
        )
    return text + "".join(blocks)


# -- the hub as a process ----------------------------------------------------------------------
class HubProcess:
    """`mpp hub` in its own process (no web app), restartable, killable like a power cut."""

    def __init__(
        self,
        site_file: Path,
        log: Path,
        env: dict[str, str] | None = None,
        first_start: bool = True,
    ) -> None:
        self.site_file = site_file
        self.log = log
        self.env = env  # e.g. a FakeClock's (tests/chaos/faketime.py)
        self.first_start = first_start  # may make a missing database (`mpp hub --first-start`)
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> HubProcess:
        """Start the hub (its log appended to `log`)."""
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [
                    *HUB_COMMAND,
                    "--site",
                    str(self.site_file),
                    "--log-level",
                    "WARNING",
                    *(["--first-start"] if self.first_start else []),
                ],
                cwd=ROOT,
                stdout=out,
                stderr=out,
                env=self.env,
            )
        self.starts += 1
        return self

    @property
    def pid(self) -> int:
        """The running hub's process id."""
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        """True while the process runs."""
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: no clean-up, no last words (as a power cut)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(10)

    def stop(self) -> int | None:
        """SIGTERM and wait (SIGKILL after 10 s); the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.proc.returncode

    def log_text(self) -> str:
        """What the hub logged (warnings and errors)."""
        return self.log.read_text(encoding="utf-8", errors="replace")


# -- kiosks in their own processes -------------------------------------------------------------
def _read_line(proc: subprocess.Popen[str], timeout: float) -> str:
    """The next line the process prints, or '' after `timeout` seconds."""
    line: list[str] = []
    stdout = proc.stdout
    assert stdout is not None
    reader = threading.Thread(target=lambda: line.append(stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    return line[0].strip() if line else ""


class KioskFleet:
    """Kiosk processes (`tests.chaos.kiosk_process`): the real KioskApp, each on its own
    MockFactory pins and printer, started together, each pressing `presses` times."""

    def __init__(self, site_file: Path, devices: list[str], presses: int, workdir: Path) -> None:
        self.site_file = site_file
        self.devices = devices
        self.presses = presses
        self.workdir = workdir
        self.procs: list[subprocess.Popen[str]] = []
        self._logs: list[Any] = []
        self.started_at = 0.0
        self.seconds = 0.0

    def start(self, deadline_s: float) -> KioskFleet:
        """Start every kiosk, wait until all are connected, then let them all press at once."""
        for device in self.devices:
            args = [str(self.site_file), device, str(self.presses), str(self.result_file(device))]
            self._logs.append((self.workdir / f"{device}.log").open("wb"))
            self.procs.append(
                subprocess.Popen(
                    [*KIOSK_COMMAND, *args, str(deadline_s)],
                    cwd=ROOT,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=self._logs[-1],
                    text=True,
                )
            )
        ready = [_read_line(p, 30) for p in self.procs]
        assert ready == ["ready"] * len(self.procs), ready
        self.started_at = time.monotonic()
        for proc in self.procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        return self

    def wait(self, timeout: float) -> None:
        """Wait until every kiosk has pressed, printed and reported (AssertionError if not)."""
        finished = [_read_line(p, timeout) for p in self.procs]
        self.seconds = time.monotonic() - self.started_at
        assert finished == ["done"] * len(self.procs), finished

    def result_file(self, device: str) -> Path:
        """Where a kiosk writes what it printed, voided and told."""
        return self.workdir / f"{device}.json"

    def results(self) -> dict[str, dict[str, Any]]:
        """Each kiosk's result, by device id."""
        return {d: json.loads(self.result_file(d).read_text()) for d in self.devices}

    def close(self) -> None:
        """Stop kiosks still running; close pipes and logs."""
        stop_all(self.procs)
        for proc in self.procs:
            for pipe in (proc.stdin, proc.stdout):
                if pipe is not None:
                    pipe.close()
        for log in self._logs:
            log.close()


# -- raw commands and replies ------------------------------------------------------------------
@dataclass(frozen=True)
class Answer:
    """The hub's reply to one raw command, decoded."""

    reply: m.Reply
    topic: str


class CommandTap:
    """A test client that publishes any bytes on any command topic and collects the hub's
    replies, matched by MQTT 5 correlation data (a bad payload has no request id to match)."""

    def __init__(self, site: Site, client_id: str | None = None) -> None:
        broker = site.broker
        self.bus = Bus(
            site.site.id,
            client_id or f"chaos-tap-{uuid.uuid4().hex[:8]}",
            "hub",
            host=broker.host,
            port=broker.port,
            mqtt_version=5,
        )
        self.topics = self.bus.topics
        self._answers: dict[bytes, Answer] = {}
        self._cv = threading.Condition()
        self.bus.subscribe(self.topics.all_of("reply"), self._on_reply)

    def start(self) -> CommandTap:
        """Connect (AssertionError if the broker is not there)."""
        assert self.bus.start(wait=10), "the command tap could not connect to the broker"
        return self

    def stop(self) -> None:
        """Disconnect."""
        self.bus.stop()

    def _on_reply(self, incoming: Incoming) -> None:
        if not incoming.correlation:
            return
        answer = Answer(m.decode(m.Reply, incoming.payload), incoming.topic)
        with self._cv:
            self._answers[incoming.correlation] = answer
            self._cv.notify_all()

    def send(self, device: str, kind: str, payload: bytes) -> bytes:
        """Publish `payload` on cmd/{device}/{kind}; the correlation to wait for."""
        correlation = uuid.uuid4().bytes
        props = Properties(PacketTypes.PUBLISH)
        props.CorrelationData = correlation
        self.bus.publish(self.topics.command(device, kind), payload, properties=props)
        return correlation

    def wait(self, correlations: Iterable[bytes], timeout: float) -> dict[bytes, Answer]:
        """The answers that came for `correlations` within `timeout` (popped)."""
        wanted = set(correlations)
        deadline = time.monotonic() + timeout
        with self._cv:
            while not wanted <= self._answers.keys():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cv.wait(min(left, 0.2))
            return {c: self._answers.pop(c) for c in wanted if c in self._answers}

    def ask(self, device: str, kind: str, payload: bytes, timeout: float = 5.0) -> Answer | None:
        """Send one payload and wait for its answer (None: no answer in time)."""
        correlation = self.send(device, kind, payload)
        return self.wait([correlation], timeout).get(correlation)


def wait_hub(tap: CommandTap, timeout: float = 30.0) -> float:
    """Block until the hub answers (a payload that is not JSON: refused, changes nothing);
    the seconds it took. AssertionError if it does not answer in `timeout`."""
    started = time.monotonic()
    deadline = started + timeout
    while time.monotonic() < deadline:
        answer = tap.ask("chaos-probe", "issue", b"are you there?", timeout=0.5)
        if answer is not None:
            assert answer.reply.error is not None and answer.reply.error.code == "bad_json"
            return time.monotonic() - started
    raise AssertionError(f"the hub did not answer within {timeout:g} s")


# -- what was stored and published -------------------------------------------------------------
def open_db(path: Path) -> sqlite3.Connection:
    """A connection to the hub's database (read-write: opening runs WAL recovery, as the hub's
    own restart would)."""
    conn = sqlite3.connect(path, timeout=10)
    conn.row_factory = sqlite3.Row
    return conn


def integrity(path: Path) -> str:
    """PRAGMA integrity_check of the database ('ok' when sound)."""
    conn = open_db(path)
    try:
        return "; ".join(row[0] for row in conn.execute("PRAGMA integrity_check"))
    finally:
        conn.close()


def db_dump(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, sorted: the whole state the hub keeps on disk."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
                "ORDER BY name"
            )
        ]
        return {
            table: sorted(conn.execute(f'SELECT * FROM "{table}"').fetchall(), key=repr)
            for table in tables
        }
    finally:
        conn.close()


def tickets(path: Path) -> list[dict[str, Any]]:
    """Every stored ticket as a dict, by id."""
    conn = open_db(path)
    try:
        return [dict(row) for row in conn.execute("SELECT * FROM tickets ORDER BY id")]
    finally:
        conn.close()


def retained_dump(site: Site, settle_s: float = 0.5, timeout: float = 10.0) -> dict[str, bytes]:
    """The hub's retained messages as the broker hands them to a new subscriber (counter,
    service and site state, alerts): topic -> payload bytes."""
    got: dict[str, bytes] = {}
    last = [time.monotonic()]
    bus = Bus(
        site.site.id,
        f"chaos-dump-{uuid.uuid4().hex[:8]}",
        "display",
        host=site.broker.host,
        port=site.broker.port,
        mqtt_version=site.broker.mqtt_version,
    )

    def keep(incoming: Incoming) -> None:
        parsed = bus.topics.parse(incoming.topic)
        if incoming.retained and parsed is not None and parsed[0] in HUB_ROWS:
            got[incoming.topic] = incoming.payload
            last[0] = time.monotonic()

    bus.subscribe(bus.topics.prefix + "#", keep)
    assert bus.start(wait=10), "the retained-state reader could not connect"
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and (not got or time.monotonic() - last[0] < settle_s):
            time.sleep(0.05)
    finally:
        bus.stop()
    return got


# -- a real small disk ---------------------------------------------------------------------------
class SmallDisk:
    """A real tmpfs of a few MB, mounted for one test: a disk that fills up."""

    def __init__(self, path: Path, size: str) -> None:
        self.path = path
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path)],
            check=True,
            capture_output=True,
        )

    def resize(self, size: str) -> None:
        """Grow (or shrink) the disk, as a technician freeing space would."""
        subprocess.run(
            ["mount", "-o", f"remount,size={size}", str(self.path)], check=True, capture_output=True
        )

    def free_bytes(self) -> int:
        """Free space on the disk now."""
        stat = os.statvfs(self.path)
        return stat.f_bavail * stat.f_frsize

    def unmount(self) -> None:
        """Unmount (lazily: a process still holding a file lets go when it ends)."""
        subprocess.run(["umount", "--lazy", str(self.path)], check=False, capture_output=True)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[SmallDisk]:
    """A real 2 MB tmpfs at tmp_path/disk (mounting needs root: CI runs as root)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a 2 MB tmpfs (the disk this test fills); CI runs as root")
    path = tmp_path / "disk"
    path.mkdir()
    disk = SmallDisk(path, "2m")
    yield disk
    disk.unmount()


# -- what the printers printed -------------------------------------------------------------------
@dataclass(frozen=True)
class PrintedTicket:
    """A ticket as it came out of a printer: its number and the token its QR code carries."""

    number: str
    token: str


def printed_tickets(data: bytes) -> list[PrintedTicket]:
    """The tickets in a printer's ESC/POS byte stream, in print order (each has one big
    number line, one QR code and one cut; AssertionError otherwise)."""
    out = parse_escpos(data)
    numbers = [line.text for line in out.lines if line.width > 2 and LABEL.fullmatch(line.text)]
    assert len(numbers) == len(out.qr_payloads) == len(out.cuts), (
        f"{len(numbers)} numbers, {len(out.qr_payloads)} QR codes, {len(out.cuts)} cuts"
    )
    tokens = [urllib.parse.unquote(url.rsplit("/t/", 1)[1]) for url in out.qr_payloads]
    return [PrintedTicket(n, t) for n, t in zip(numbers, tokens, strict=True)]


def stop_all(procs: Iterable[subprocess.Popen[Any]]) -> None:
    """Terminate test-started processes that still run (each by its own id)."""
    procs = list(procs)
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(10)
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


@pytest.fixture
def link() -> Iterator[Link]:
    """A network namespace and veth pair of this test (root and iproute2 needed), removed after."""
    with device_link() as made:
        yield made
