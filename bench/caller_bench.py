"""Caller box latency: a NEXT press until a screen has the counter's new retained state.

Real parts: Mosquitto on loopback, the hub in its own process (`mpp hub`, SQLite in a temp
dir), the caller box (caller.box.CallerBox) on gpiozero MockFactory pins with a recording
display, and a subscriber standing in for a lobby screen. Each press is `drive_low()` on the
NEXT pin; the clock stops when the subscriber receives the counter state with the new
call_seq. Also printed: press -> the box's own feedback (the hub's reply applied), and
press -> fault feedback while the broker is down.

    .venv/bin/python bench/caller_bench.py [--presses 300]
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import queue
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gpiozero.pins.mock import MockFactory  # noqa: E402

from bench.common import line, pct, site_text  # noqa: E402
from bench.figures import figure  # noqa: E402
from caller.box import CallerBox  # noqa: E402
from caller.buttons import CallerPanel  # noqa: E402
from caller.lcd import FakeCharDisplay  # noqa: E402
from protocol import messages as m  # noqa: E402
from protocol.brokers import Mosquitto  # noqa: E402
from protocol.mqtt import Bus, Incoming  # noqa: E402
from protocol.site import CallerDevice, parse_site  # noqa: E402

DEVICE = "caller-03"
NEXT_PIN = 17


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presses", type=int, default=300)
    parser.add_argument("--outage-presses", type=int, default=50)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)  # the outage below logs expected warnings
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())

    with tempfile.TemporaryDirectory(prefix="mpp-caller-bench-") as tmp, Mosquitto() as broker:
        text = site_text(broker.port, Path(tmp) / "hub.sqlite", "caller")
        (Path(tmp) / "site.toml").write_text(text)
        site = parse_site(text)
        site_file = str(Path(tmp) / "site.toml")
        hub_args = ["hub", "--site", site_file, "--first-start", "--log-level", "ERROR"]
        hub = subprocess.Popen(
            [sys.executable, "-c", "from protocol.cli import main; main()", *hub_args],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
        )
        screen = Bus.for_device(site, "tv-lobby-1")
        kiosk = Bus.for_device(site, "kiosk-1")
        box_bus = Bus.for_device(site, DEVICE)
        states: queue.Queue[tuple[float, m.CounterState]] = queue.Queue()

        def on_state(incoming: Incoming) -> None:
            if incoming.payload:
                states.put((time.perf_counter(), m.decode(m.CounterState, incoming.payload)))

        screen.subscribe(screen.topics.counter_state(3), on_state)
        pins = MockFactory()
        device = site.devices[DEVICE]
        assert isinstance(device, CallerDevice)
        panel = CallerPanel(device, DEVICE, pin_factory=pins)
        box = CallerBox(
            site, DEVICE, box_bus, panel=panel, display=FakeCharDisplay(), debounce_s=0.0
        ).start()
        try:
            for bus in (screen, kiosk, box_bus):
                assert bus.start(wait=10), "cannot connect to the benchmark broker"
            # The hub answers once it is up; tickets for counter 3's service (ktp).
            deadline = time.monotonic() + 20
            while True:
                try:
                    kiosk.request(m.IssueTicket(device="kiosk-1", service="ktp"), timeout=1)
                    break
                except Exception:
                    if time.monotonic() > deadline:
                        raise
            for _ in range(args.presses):
                kiosk.request(m.IssueTicket(device="kiosk-1", service="ktp"), timeout=10)
            box_bus.request(m.OpenCounter(device=DEVICE, counter=3, officer="bench"), timeout=10)
            time.sleep(0.5)
            while not states.empty():
                states.get_nowait()

            next_pin = pins.pin(NEXT_PIN)
            to_reply: list[float] = []
            to_screen: list[float] = []
            for _ in range(args.presses):
                call_seq = box.state.call_seq if box.state else 0
                started = time.perf_counter()
                next_pin.drive_low()
                next_pin.drive_high()
                assert box.wait_idle(10)
                to_reply.append(time.perf_counter() - started)
                if box.recent[-1].status != "ok":
                    raise SystemExit(f"press failed: {box.recent[-1]}")
                while True:
                    at, state = states.get(timeout=10)
                    if state.call_seq > call_seq:
                        to_screen.append(at - started)
                        break
                time.sleep(0.02)

            broker.stop()
            deadline = time.monotonic() + 10
            while box_bus.connected and time.monotonic() < deadline:
                time.sleep(0.01)
            outage: list[float] = []
            for _ in range(args.outage_presses):
                started = time.perf_counter()
                next_pin.drive_low()
                next_pin.drive_high()
                assert box.wait_idle(10)
                outage.append(time.perf_counter() - started)
                assert box.recent[-1].code == "offline", box.recent[-1]
        finally:
            for bus in (screen, kiosk, box_bus):
                bus.stop(timeout=0.5)
            panel.close()
            hub.terminate()
            hub.wait(10)

    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}; "
        f"date {time.strftime('%Y-%m-%d')}; load average before: {load}; hub in its own process"
    )
    print(line("NEXT press -> counter state received by a subscriber", to_screen))
    print(line("NEXT press -> box has the hub's answer (display updated)", to_reply))
    print(line("NEXT press with the broker down -> fault feedback", outage))
    figure(
        "caller: NEXT press -> new counter state at a subscriber, p50",
        round(pct([v * 1000 for v in to_screen], 50), 2),
        "ms",
    )
    figure(
        "caller: NEXT press -> new counter state at a subscriber, p99",
        round(pct([v * 1000 for v in to_screen], 99), 2),
        "ms",
    )
    figure(
        "caller: NEXT press, broker down -> fault feedback, p99",
        round(pct([v * 1000 for v in outage], 99), 2),
        "ms",
    )


if __name__ == "__main__":
    main()
