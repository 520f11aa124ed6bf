"""A raw MQTT 5 client on the regional broker's TLS listener with one site's account."""

from __future__ import annotations

import ssl
import threading
import time

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from tests.region.rig import RegionRig


class RegionalProbe:
    """Publishes as a site's account and records PUBACK reason codes and what it receives."""

    def __init__(self, rig: RegionRig, account: str) -> None:
        self.acks: dict[int, int] = {}
        self.received: list[tuple[str, bytes]] = []
        self._cv = threading.Condition()
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=account, protocol=paho.MQTTv5
        )
        self.client.username_pw_set(account, rig.passwords[account])
        self.client.tls_set(ca_certs=str(rig.ca_file), tls_version=ssl.PROTOCOL_TLS_CLIENT)
        self.client.on_publish = self._on_publish
        self.client.on_message = lambda _c, _u, msg: self.received.append((msg.topic, msg.payload))
        connected = threading.Event()
        self.client.on_connect = lambda *_a: connected.set()
        self.client.connect("127.0.0.1", rig.layout.bridge_port)
        self.client.loop_start()
        assert connected.wait(10), "the probe could not connect to the regional broker"

    def _on_publish(self, _c, _u, mid, reason, _p) -> None:
        with self._cv:
            self.acks[mid] = reason.value
            self._cv.notify_all()

    def publish(self, messages: dict[str, bytes]) -> dict[str, int]:
        """QoS 1 publishes; the broker's PUBACK reason code per topic (135: not authorised)."""
        mids = {self.client.publish(t, p, qos=1).mid: t for t, p in messages.items()}
        deadline = time.monotonic() + 10
        with self._cv:
            while not set(mids) <= set(self.acks) and time.monotonic() < deadline:
                self._cv.wait(0.1)
        return {topic: self.acks.get(mid, -1) for mid, topic in mids.items()}

    def hears(self, topic: str, rig: RegionRig, listen_s: float = 1.0) -> list[bytes]:
        """Subscribe to `topic`, have the region service answer there, return what arrived."""
        done = threading.Event()
        self.client.on_subscribe = lambda *_a: done.set()
        self.client.subscribe(topic, qos=1)
        assert done.wait(5)
        time.sleep(listen_s)
        return [payload for t, payload in self.received if t == topic]

    def close(self) -> None:
        """Disconnect."""
        self.client.disconnect()
        self.client.loop_stop()
