"""Kiosk latency: a service-button press until the ticket's bytes are handed to the printer.

Real parts: Mosquitto on loopback, the hub in its own process (`mpp hub`, SQLite in a temp
dir), the kiosk (kiosk.app.KioskApp) on gpiozero MockFactory pins, its ticket rendered by
python-escpos for the inventory's printer profile. The printer is an escpos Dummy that notes
the time of the write: the clock starts at `drive_low()` on the KTP button and stops when the
ticket's bytes reach the printer's `_raw()` (the hub has confirmed and stored the number).
Also printed: press -> the kiosk is ready again (ticket reported printed to the hub), and
press -> fault feedback while the broker is down (nothing printed).

    .venv/bin/python bench/kiosk_bench.py [--presses 300]
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from escpos.printer import Dummy  # noqa: E402
from gpiozero.pins.mock import MockFactory  # noqa: E402

from bench.common import line, pct, site_text  # noqa: E402
from bench.figures import figure  # noqa: E402
from kiosk.app import KioskApp  # noqa: E402
from kiosk.buttons import KioskPanel  # noqa: E402
from kiosk.printer import TicketPrinter  # noqa: E402
from protocol import messages as m  # noqa: E402
from protocol.brokers import Mosquitto  # noqa: E402
from protocol.mqtt import Bus  # noqa: E402
from protocol.site import KioskDevice, parse_site  # noqa: E402

DEVICE = "kiosk-3"
KTP_PIN = 5


class TimedDummy(Dummy):
    """An escpos Dummy that notes when each write arrives."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.writes: list[float] = []

    def _raw(self, msg: bytes) -> None:
        self.writes.append(time.perf_counter())
        super()._raw(msg)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presses", type=int, default=300)
    parser.add_argument("--outage-presses", type=int, default=50)
    args = parser.parse_args()
    if args.presses > 990:
        raise SystemExit("at most 990 presses: ticket numbers of one service end at 999")
    # The outage below logs expected warnings (escpos may have configured the root logger).
    logging.basicConfig(level=logging.CRITICAL)
    logging.getLogger().setLevel(logging.CRITICAL)
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())

    with tempfile.TemporaryDirectory(prefix="mpp-kiosk-bench-") as tmp, Mosquitto() as broker:
        text = site_text(broker.port, Path(tmp) / "hub.sqlite", "kiosk")
        (Path(tmp) / "site.toml").write_text(text)
        site = parse_site(text)
        site_file = str(Path(tmp) / "site.toml")
        hub_args = ["hub", "--site", site_file, "--first-start", "--log-level", "ERROR"]
        hub = subprocess.Popen(
            [sys.executable, "-c", "from protocol.cli import main; main()", *hub_args],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
        )
        spec = site.devices[DEVICE]
        assert isinstance(spec, KioskDevice) and spec.printer is not None
        pins = MockFactory()
        panel = KioskPanel(spec, pin_factory=pins, device_id=DEVICE)
        device = TimedDummy(profile=spec.printer.profile)
        app = KioskApp(
            site,
            DEVICE,
            Bus.for_device(site, DEVICE),
            TicketPrinter(device, spec.printer),
            panel=panel,
            lockout_s=0.0,
            bounce_s=0.0,
            request_timeout=5.0,
        )
        probe = Bus.for_device(site, "kiosk-1")
        try:
            app.start(wait_connected=10)
            assert probe.start(wait=10), "cannot connect to the benchmark broker"
            deadline = time.monotonic() + 20  # the hub answers once it is up
            while True:
                try:
                    probe.request(m.IssueTicket(device="kiosk-1", service="kk"), timeout=1)
                    break
                except Exception:
                    if time.monotonic() > deadline:
                        raise
            button = pins.pin(KTP_PIN)
            to_printer: list[float] = []
            to_ready: list[float] = []
            for _ in range(args.presses):
                writes = len(device.writes)
                started = time.perf_counter()
                button.drive_low()
                button.drive_high()
                assert app.wait_idle(10)
                to_ready.append(time.perf_counter() - started)
                if len(device.writes) != writes + 1 or app.notices[-1].kind != "printed":
                    raise SystemExit(f"press did not print: {app.notices[-1]}")
                to_printer.append(device.writes[-1] - started)
                time.sleep(0.02)
            printed = len(app.printed)

            broker.stop()
            deadline = time.monotonic() + 10
            while app.bus.connected and time.monotonic() < deadline:
                time.sleep(0.01)
            outage: list[float] = []
            for _ in range(args.outage_presses):
                started = time.perf_counter()
                button.drive_low()
                button.drive_high()
                assert app.wait_idle(10)
                outage.append(time.perf_counter() - started)
                assert app.notices[-1].kind == "offline", app.notices[-1]
            assert len(device.writes) == printed, "something was printed while offline"
        finally:
            probe.stop(timeout=0.5)
            app.stop()
            panel.close()
            pins.close()
            hub.terminate()
            hub.wait(10)

    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}; "
        f"date {time.strftime('%Y-%m-%d')}; load average before: {load}; hub in its own process"
    )
    print(f"printer: escpos Dummy, profile {spec.printer.profile}, {spec.printer.width_mm} mm")
    print(line("press -> ticket bytes handed to the printer", to_printer))
    print(line("press -> kiosk ready again (printed reported to the hub)", to_ready))
    print(line("press with the broker down -> fault feedback, nothing printed", outage))
    figure(
        "kiosk: press -> ticket bytes to the printer, p50",
        round(pct([v * 1000 for v in to_printer], 50), 2),
        "ms",
    )
    figure(
        "kiosk: press -> ticket bytes to the printer, p99",
        round(pct([v * 1000 for v in to_printer], 99), 2),
        "ms",
        "< 50",
    )


if __name__ == "__main__":
    main()
