"""A device process for tests: connects with its bundle (password, CA), then idles.

    python -m tests.provisioning.device_process BUNDLE_DIR DEVICE [PRINTER_STATE]

Killed by the test: the broker then publishes its last will, as when a Pi loses power.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from protocol.mqtt import Bus
from protocol.site import load_site


def main() -> None:
    bundle, device = Path(sys.argv[1]), sys.argv[2]
    site = load_site(bundle / "site.toml")
    bus = Bus.for_device(
        site,
        device,
        host="127.0.0.1",  # the bundle names the server; this test machine has no such host
        tls_ca=str(bundle / "ca.crt"),
        username=device,
        password=(bundle / "broker-password").read_text().strip(),
    )
    if not bus.start(wait=10):
        print("refused", flush=True)
        sys.exit(1)
    if len(sys.argv) > 3:
        bus.set_health(printer=sys.argv[3])
    bus.flush(5)
    print("up", flush=True)
    time.sleep(60)  # bounded: the test kills it long before


if __name__ == "__main__":
    main()
