"""A whole MPP on one machine: broker, hub with its web app, kiosks and caller boxes on
simulated pins, printers writing files, and a screen (a window, or the web display).

    site = DemoSite(Path("demo-out")).start()
    ...                       # presses from the control page, the terminal, or Traffic
    site.stop()
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from demo.brokers import local_broker
from demo.devices import DemoCaller, DemoKiosk
from demo.site import EXAMPLE, demo_inventory
from demo.traffic import Traffic
from hub.service import HubService
from protocol.brokers import EmbeddedBroker, Mosquitto, free_port
from protocol.errors import MppError
from protocol.site import Site, parse_site

log = logging.getLogger("mpp.demo")

DEMO_LOGIN = ("demo", "demo-mpp")


class DemoError(MppError, RuntimeError):
    """A part of the demo did not start (the message says which and where its log is)."""


OPEN_COUNTERS = (1, 3, 5, 7, 10, 13, 16, 19, 22, 23)


def port_or_free(port: int) -> int:
    """`port` if nothing listens there on 127.0.0.1, else a free one (and a warning saying so).

    Connections of an earlier run waiting in TIME_WAIT do not count: the web servers bind with
    SO_REUSEADDR, and so does this probe."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            other = free_port()
            log.warning(
                "port taken, using another",
                extra={
                    "port": port,
                    "instead": other,
                    "why": f"another program listens on 127.0.0.1:{port} ({exc.strerror}); "
                    f"`ss -ltnp 'sport = :{port}'` shows which, or give --port",
                },
            )
            return other
    return port


@dataclass
class DemoSite:
    """Everything a demo runs, started and stopped together."""

    workdir: Path
    broker_kind: str = "auto"
    web_port: int = 8080
    traffic: bool = True
    site: Site | None = None
    broker: Mosquitto | EmbeddedBroker | None = None
    broker_line: str = ""
    hub: HubService | None = None
    web: subprocess.Popen[bytes] | None = None
    kiosks: list[DemoKiosk] = field(default_factory=list)
    callers: list[DemoCaller] = field(default_factory=list)
    servers: list = field(default_factory=list)
    visitors: Traffic | None = None
    urls: dict[str, str] = field(default_factory=dict)

    @property
    def tickets(self) -> Path:
        """Where the printers write."""
        return self.workdir / "tickets"

    def start(self) -> DemoSite:
        """Start everything; on failure, stop what already started."""
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        from demo.control import create_control_app
        from demo.webserver import WebServer
        from web.users import UserStore

        self._clean()
        self.broker, version, self.broker_line = local_broker(self.broker_kind)
        web_port = port_or_free(self.web_port)
        text = demo_inventory(
            EXAMPLE.read_text(encoding="utf-8"),
            self.workdir,
            broker_port=self.broker.port,
            mqtt_version=version,
            web_port=web_port,
        )
        site_file = self.workdir / "site.toml"
        site_file.write_text(text, encoding="utf-8")
        if (EXAMPLE.parent / "umkm").is_dir():
            shutil.copytree(EXAMPLE.parent / "umkm", self.workdir / "umkm", dirs_exist_ok=True)
        self.site = site = parse_site(text, str(site_file))
        self.hub = HubService(site, first_start=True).start()
        users = UserStore(site.web.database_path(site.hub.database))
        try:
            if users.get(DEMO_LOGIN[0]) is None:
                users.add(DEMO_LOGIN[0], "Demo", "admin", DEMO_LOGIN[1])
        finally:
            users.close()
        # The site web app is its own process, as on a site server (`mpp web`).
        self.web = start_web(site_file, web_port, self.workdir / "web.log")
        web_url = f"http://127.0.0.1:{web_port}"
        self.tickets.mkdir(parents=True, exist_ok=True)
        for device_id, spec in site.devices.items():
            if spec.role == "kiosk":
                self.kiosks.append(DemoKiosk(site, device_id, self.tickets).start())
            elif spec.role == "caller" and spec.counter in OPEN_COUNTERS:
                self.callers.append(DemoCaller(site, device_id).start())
        control = create_control_app(
            site,
            self.kiosks,
            self.callers,
            self.tickets,
            hub_url=web_url,
            broker=self.broker_line,
            login="/".join(DEMO_LOGIN),
        )
        control_web = WebServer(control, "127.0.0.1", port_or_free(web_port + 1)).start()
        self.servers.append(control_web)
        self.urls = {
            "control": control_web.url,
            "dashboard": f"{web_url}/dashboard",
            "lobby screen": f"{web_url}/display/lobby",
            "canteen screen": f"{web_url}/display/canteen",
        }
        if self.traffic:
            self.visitors = Traffic(self.kiosks, self.callers).start()

    def _clean(self) -> None:
        """A demo starts from an empty day: the previous run's database and tickets go."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        for name in ("hub.sqlite", "hub.sqlite-wal", "hub.sqlite-shm", "web.log"):
            (self.workdir / name).unlink(missing_ok=True)
        shutil.rmtree(self.tickets, ignore_errors=True)

    def press(self, device: str, key: str) -> str:
        """Press a button of a simulated device (the terminal's and the tests' way in)."""
        for kiosk in self.kiosks:
            if kiosk.device_id == device:
                return kiosk.press(key)
        for caller in self.callers:
            if caller.device_id == device:
                return "pressed" if caller.press(key) else "no such button"
        return "no such device"

    def stop(self) -> None:
        """Stop everything, devices first, broker last."""
        if self.visitors is not None:
            self.visitors.stop()
        devices = [*self.kiosks, *self.callers]
        if devices:  # together: each takes ~0.5 s (gpiozero joins its buttons' threads)
            with ThreadPoolExecutor(len(devices), thread_name_prefix="demo-stop") as pool:
                list(pool.map(_stop, devices))
        for server in self.servers:
            server.stop()
        if self.web is not None:
            self.web.terminate()
            try:
                self.web.wait(10)
            except subprocess.TimeoutExpired:
                self.web.kill()
                self.web.wait()
            self.web = None
        if self.hub is not None:
            self.hub.stop()
        if self.broker is not None:
            self.broker.close()
        self.kiosks, self.callers, self.servers = [], [], []
        self.hub = self.broker = self.visitors = None


def _stop(device: DemoKiosk | DemoCaller) -> None:
    try:
        device.stop()
    except Exception:
        log.exception("stopping a demo device failed", extra={"device": device.device_id})


def start_web(site_file: Path, port: int, log_file: Path) -> subprocess.Popen[bytes]:
    """`mpp web` for the demo's site, once it answers its health check (its log: log_file)."""
    with log_file.open("ab") as log_out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "protocol.cli", "web", "--site", str(site_file)],
            stdout=log_out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches the demo, which stops it in order
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise DemoError(f"the web app did not start; see {log_file}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                return proc
        except OSError:
            time.sleep(0.2)
    proc.terminate()
    raise DemoError(f"the web app did not answer on port {port} within 30 s; see {log_file}")


def has_screen() -> bool:
    """A desktop session this process could open a window on."""
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
