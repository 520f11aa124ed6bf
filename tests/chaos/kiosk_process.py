"""One kiosk in its own process for the chaos suite: the real `KioskApp` on its own gpiozero
MockFactory pins and its inventory printer, pressing its service buttons when told to go.

    python -m tests.chaos.kiosk_process SITE_FILE DEVICE PRESSES RESULT_JSON [DEADLINE_S]

Prints `ready` once connected, waits for a line on stdin, presses its buttons in turn (each
press after the previous ticket is finished), waits until every report reached the hub, writes
what it printed, voided and told the citizen to RESULT_JSON and prints `done`.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from pathlib import Path

from gpiozero.pins.mock import MockFactory

from kiosk.app import KioskApp
from kiosk.buttons import KioskPanel
from kiosk.printer import TicketPrinter
from protocol.mqtt import Bus
from protocol.site import KioskDevice, load_site


def main() -> None:
    site_file, device, presses, result = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    deadline_s = float(sys.argv[5]) if len(sys.argv) > 5 else 300.0
    site = load_site(site_file)
    spec = site.devices[device]
    assert isinstance(spec, KioskDevice) and spec.printer is not None
    factory = MockFactory()
    bus = Bus.for_device(site, device)
    printer = TicketPrinter.from_inventory(spec.printer)
    panel = KioskPanel(spec, pin_factory=factory, device_id=device)
    # A press may follow the previous ticket at once (no double-press lockout): the load test
    # presses as fast as the kiosk serves.
    app = KioskApp(site, device, bus, printer, panel=panel, lockout_s=0.0, bounce_s=0.0)
    app.start(wait_connected=10)
    print("ready" if bus.connected else "offline", flush=True)
    sys.stdin.readline()
    pins = list(spec.buttons.values())
    started = time.monotonic()
    deadline = started + deadline_s
    done = 0
    outcomes: Counter[str] = Counter()
    for i in range(presses):
        if time.monotonic() > deadline:
            break
        pin = factory.pin(pins[i % len(pins)])
        pin.drive_low()
        pin.drive_high()
        done += 1
        if not app.wait_idle(min(60.0, max(0.0, deadline - time.monotonic()) + 1)):
            break
        told = app.notices[-1]  # how this press ended, as the citizen was told
        outcomes[told.kind if told.code is None else f"{told.kind}:{told.code}"] += 1
    took = time.monotonic() - started
    # Reports kept while the hub was unreachable go out by themselves: wait for them (bounded).
    report_deadline = time.monotonic() + 30
    while app.pending_reports and time.monotonic() < report_deadline:
        time.sleep(0.1)
    Path(result).write_text(
        json.dumps(
            {
                "device": device,
                "presses": done,
                "seconds": took,
                "printed": [t.model_dump() for t in app.printed],
                "voided": [t.model_dump() for t in app.voided],
                "pending_reports": len(app.pending_reports),
                "outcomes": outcomes,
            }
        ),
        encoding="utf-8",
    )
    app.stop()
    printer.close()
    panel.close()
    print("done", flush=True)


if __name__ == "__main__":
    main()
