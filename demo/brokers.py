"""Pick the broker for a demo or simulation: Mosquitto when installed, else the embedded one."""

from __future__ import annotations

import shutil
from pathlib import Path

from protocol.brokers import EmbeddedBroker, Mosquitto


def local_broker(kind: str = "auto") -> tuple[Mosquitto | EmbeddedBroker, int, str]:
    """(running broker, MQTT version to use, a line saying which one runs)."""
    has_mosquitto = shutil.which("mosquitto") or Path("/usr/sbin/mosquitto").exists()
    if kind == "mosquitto" or (kind == "auto" and has_mosquitto):
        broker = Mosquitto(own_session=True).start()  # Ctrl-C stops the devices first
        return broker, 5, f"Mosquitto on 127.0.0.1:{broker.port} (MQTT 5)"
    broker = EmbeddedBroker().start()
    return (
        broker,
        3,
        (
            f"embedded Python broker (amqtt) on 127.0.0.1:{broker.port} (MQTT 3.1.1); "
            "install mosquitto for the real one"
        ),
    )
