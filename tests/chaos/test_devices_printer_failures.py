"""Scenario 5 of issue 11: printer failures at print time.

Invariant: whatever the printer does at print time (roll empty before the ticket, paper
running out during it, switched off, its network port gone, the driver failing half-way with
an I/O error or an unexpected exception) no phantom ticket exists: every ticket the hub
stored is either printed whole by the printer (exactly once, and marked printed) or voided
(the kiosk's documented choice, kiosk/app.py), presses while the printer is known to be
unusable create no ticket at all, and the printer state each failure leaves is what the
hub's fleet view and the staff dashboard show. Checked from the hub's SQLite file, the
bytes the loopback printer turned into paper, the fleet entry and the dashboard page.
"""

from __future__ import annotations

import contextlib
import random
import re
import socket
import struct
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from flask.testing import FlaskClient

from bench.figures import figure
from hub.service import HubService
from kiosk.printer import TicketPrinter, _network_class
from protocol.site import KioskDevice
from tests.chaos.device_rigs import KioskRig, kiosk_rig, stored_tickets
from tests.kiosk.escpos_bytes import parse
from tests.timing import wait_until
from tests.web.conftest import login, web_app

KIOSK = "kiosk-3"
STATUS_REQUEST = b"\x10\x04\x04"  # DLE EOT 4: paper sensor status
PAPER_OK, PAPER_OUT = b"\x12", b"\x72"
CUT = b"\x1dV\x00"  # GS V 0, the full cut that ends each of our tickets
ROUNDS = 4
FAILURES = ("paper_out", "runs_out", "switched_off", "port_closed", "io_error", "driver_bug")
# The printer state each failure must leave in the kiosk's health (and so on the dashboard).
HEALTH = {
    "paper_out": "paper_out",
    "runs_out": "paper_out",
    "switched_off": "offline",
    "port_closed": "offline",
    "io_error": "error",
    "driver_bug": "error",
}
# Failures the kiosk knows of before the next press: that press creates no ticket.
STAYS_BAD = ("paper_out", "switched_off", "port_closed")


@dataclass
class Job:
    """The bytes of one print job on one connection, and whether that connection's printer
    is stuck inside a command a failed job left half sent."""

    data: bytearray = field(default_factory=bytearray)
    broken: bool = False


class LoopbackPrinter:
    """A network thermal printer on 127.0.0.1 whose faults the test switches: it answers
    DLE EOT 4 like an Epson and keeps what it printed (`paper`), what it took in while its
    paper ran out (`spoiled`) and what it swallowed while switched off (`lost`)."""

    def __init__(self) -> None:
        self.mode = "ok"
        self.paper = bytearray()
        self.spoiled = bytearray()
        self.lost = bytearray()
        self.port = 0
        self._lock = threading.Lock()
        self._conns: list[socket.socket] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._listener: socket.socket | None = None
        self._listen()

    # -- the test's switches -----------------------------------------------------------------
    def set(self, mode: str) -> None:
        """ok | paper_out | runs_out (the roll ends during the next ticket) | switched_off |
        port_closed (connections reset, new ones refused)."""
        with self._lock:
            was, self.mode = self.mode, mode
        if mode == "port_closed":
            self._drop_all()
            if self._listener is not None:
                self._listener.close()
                self._listener = None
        elif was == "switched_off":
            self._drop_all()  # it rebooted: whatever it swallowed is gone
        if was == "port_closed" and mode != "port_closed":
            self._listen()

    def close(self) -> None:
        """Stop serving."""
        self._stop.set()
        self._drop_all()
        if self._listener is not None:
            self._listener.close()
        for thread in self._threads:
            thread.join(2)

    # -- serving -------------------------------------------------------------------------------
    def _listen(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(4)
        listener.settimeout(0.05)
        self.port = listener.getsockname()[1]
        self._listener = listener
        self._spawn(self._accept, listener)

    def _spawn(self, target: Any, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept(self, listener: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # closed: the port is gone
            with self._lock:
                self._conns.append(conn)
            self._spawn(self._serve, conn)

    def _drop_all(self) -> None:
        with self._lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            # A reset, not a polite close: what a printer losing power does to a connection.
            with contextlib.suppress(OSError):
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(0.05)
        pending = b""
        job = Job()
        while not self._stop.is_set():
            try:
                chunk = conn.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return  # dropped by the printer itself: what it held is lost
            if not chunk:
                self._finish(job)  # the kiosk hung up: a job without its end is spoiled
                return
            pending += chunk
            while True:
                at = pending.find(STATUS_REQUEST)
                if at < 0:  # keep what may be the start of a request for the next chunk
                    keep = next((k for k in (2, 1) if pending.endswith(STATUS_REQUEST[:k])), 0)
                    job.data += pending[: len(pending) - keep]
                    pending = pending[len(pending) - keep :]
                    break
                job.data += pending[:at]
                pending = pending[at + len(STATUS_REQUEST) :]
                self._finish(job)
                if not self._answer(conn):
                    return

    def _finish(self, job: Job) -> None:
        """A print job ended (a status request or hang-up follows it): to paper if whole."""
        if not job.data:
            return
        with self._lock:
            mode = self.mode
        if mode == "switched_off":
            self.lost += job.data
        elif mode in ("running_out", "paper_out"):
            self.spoiled += job.data  # a ticket without the paper to finish it
        elif job.broken or not job.data.endswith(CUT):
            # Half a ticket, or a ticket after one: the printer is still inside the broken
            # command, so it prints garbage until the connection is dropped.
            self.spoiled += job.data
            job.broken = True
        else:
            self.paper += job.data
        job.data = bytearray()

    def _answer(self, conn: socket.socket) -> bool:
        with self._lock:
            mode = self.mode
            if mode == "runs_out":
                self.mode = "running_out"  # fine now; the roll ends during the next ticket
            elif mode == "running_out":
                self.mode = "paper_out"
        if mode == "switched_off":
            return True  # it hears nothing, answers nothing
        reply = PAPER_OK if mode in ("ok", "runs_out") else PAPER_OUT
        try:
            conn.sendall(reply)
        except OSError:
            return False
        return True


def jamming_driver_class() -> type:
    """The kiosk's own network printer driver, with a switch that makes the next ticket fail
    half-way: its first half reaches the printer, then the driver raises."""

    class JammingNetwork(_network_class()):  # type: ignore[misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.jam: BaseException | None = None

        def _raw(self, msg: bytes) -> None:
            if self.jam is not None and len(msg) > len(STATUS_REQUEST):
                exc, self.jam = self.jam, None
                super()._raw(msg[: len(msg) // 2])
                raise exc
            super()._raw(msg)

    return JammingNetwork


@pytest.fixture
def loopback_printer() -> Iterator[LoopbackPrinter]:
    """A fault-switchable network printer on loopback, closed after the test."""
    printer = LoopbackPrinter()
    yield printer
    printer.close()


@pytest.fixture
def dashboard(hub: HubService) -> Iterator[FlaskClient]:
    """The staff dashboard of the running hub, logged in as an officer."""
    with web_app(hub.site, hub, {"SSE_KEEPALIVE_S": 0.2, "SSE_MAX_S": 3.0}) as app:
        app.extensions["mpp_users"].add("petugas", "Siti Petugas", "officer", "rahasia-123")
        client = app.test_client()
        login(client, "petugas")
        yield client


def dashboard_printer(client: FlaskClient, device: str) -> str | None:
    """The printer state in `device`'s row of the dashboard page (None: no state shown)."""
    body = client.get("/dashboard").get_data(as_text=True)
    start = body.index(f'id="dev-{device}"')
    row = body[start : body.index("</tr>", start)]
    found = re.search(r'data-printer="([a-z_]+)"', row)
    return found.group(1) if found else None


def printed_numbers(paper: bytes) -> list[str]:
    """The big ticket numbers on whole tickets (each with a QR code and a cut)."""
    out = parse(paper)
    numbers = [line.text for line in out.lines if line.width > 2]
    assert len(numbers) == len(out.qr_payloads) == len(out.cuts), (
        f"{len(numbers)} numbers, {len(out.qr_payloads)} QR codes, {len(out.cuts)} cuts"
    )
    return numbers


@pytest.mark.chaos
@pytest.mark.slow
def test_printer_failures_at_print_time_leave_no_phantom_ticket(
    hub: HubService, loopback_printer: LoopbackPrinter, dashboard: FlaskClient
) -> None:
    site = hub.site
    spec = site.devices[KIOSK]
    assert isinstance(spec, KioskDevice) and spec.printer is not None
    network = spec.printer.model_copy(
        update={"connection": "network", "host": "127.0.0.1", "port": loopback_printer.port}
    )
    driver = jamming_driver_class()(
        "127.0.0.1", loopback_printer.port, timeout=network.timeout_s, profile=network.profile
    )
    kiosk: KioskRig = kiosk_rig(site, KIOSK, TicketPrinter(driver, network), request_timeout=3)
    services = list(spec.buttons)
    rng = random.Random(5)
    failures = [f for _ in range(ROUNDS) for f in rng.sample(FAILURES, len(FAILURES))]
    refused_presses = 0

    def press() -> None:
        kiosk.press(rng.choice(services))
        assert kiosk.app.wait_idle(15), "the kiosk did not finish serving a press"

    def health_shown(state: str) -> None:
        """The state reached the hub's fleet view and the dashboard page."""
        assert wait_until(
            lambda: KIOSK in hub.fleet and hub.fleet[KIOSK].status.health.printer == state, 5
        ), f"fleet shows {hub.fleet[KIOSK].status.health.printer!r}, not {state!r}"
        assert dashboard_printer(dashboard, KIOSK) == state

    try:
        assert wait_until(lambda: kiosk.app.printer_state == "ok", 5)
        press()
        health_shown("ok")
        for failure in failures:
            voided = len(kiosk.app.voided)
            if failure == "io_error":
                driver.jam = OSError(5, "Input/output error")
            elif failure == "driver_bug":
                driver.jam = KeyError("driver bug")
            else:
                loopback_printer.set(failure)
            press()
            assert len(kiosk.app.voided) == voided + 1, f"{failure}: the ticket was not voided"
            health_shown(HEALTH[failure])
            if failure in STAYS_BAD:
                before = len(stored_tickets(hub.database))
                press()
                assert len(stored_tickets(hub.database)) == before, f"{failure}: ticket issued"
                assert kiosk.app.notices[-1].kind == "printer"
                refused_presses += 1
            loopback_printer.set("ok")
            printed = len(kiosk.app.printed)
            press()
            assert len(kiosk.app.printed) == printed + 1, f"after {failure}: no ticket printed"
            health_shown("ok")

        assert wait_until(lambda: not kiosk.app.pending_reports, 10)
        rows = [r for r in stored_tickets(hub.database) if r["source"] == KIOSK]
        on_paper = Counter(printed_numbers(bytes(loopback_printer.paper)))
        printed_rows = [r["label"] for r in rows if r["printed"]]
        voided_rows = [r["label"] for r in rows if r["status"] == "voided"]
        phantoms = [r["label"] for r in rows if r["status"] != "voided" and not r["printed"]]
        assert phantoms == [], f"stored, not voided, never printed: {phantoms}"
        assert sorted(on_paper) == sorted(printed_rows), "paper and database disagree"
        assert all(count == 1 for count in on_paper.values()), "a number printed twice"
        assert set(voided_rows).isdisjoint(on_paper), "a voided number came out whole"
        assert sorted(voided_rows) == sorted(t.number for t in kiosk.app.voided)
        assert len(voided_rows) == len(failures)
        assert sorted(printed_rows) == sorted(t.number for t in kiosk.app.printed)
        figure("printer failures injected", len(failures), "failures")
        figure("printer: tickets printed", len(printed_rows), "tickets")
        figure("printer: tickets voided", len(voided_rows), "tickets")
        figure("printer: presses refused while known bad", refused_presses, "presses")
        figure("printer: phantom tickets", len(phantoms), "tickets", "0")
    finally:
        kiosk.close()
