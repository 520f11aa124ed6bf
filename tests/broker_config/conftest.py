"""A site broker started from generated files, and raw MQTT 5 clients to probe it."""

from __future__ import annotations

import queue
import shutil
import ssl
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from broker_config.acl import HUB, MONITOR, UPLINK, WEB
from broker_config.files import (
    CONF,
    Account,
    Bridge,
    BrokerLayout,
    render_bridge,
    render_broker_files,
    write_broker_files,
)
from broker_config.local import hand_to_mosquitto, site_broker, uplink_broker
from broker_config.passwords import hash_password
from broker_config.tls import KeyPair, make_ca, make_server_cert
from broker_config.uplink import CONF as UPLINK_CONF
from broker_config.uplink import UplinkLayout, render_uplink_conf
from protocol.brokers import Mosquitto, free_port
from protocol.site import Site
from tests.conftest import make_site
from uplink.watchdog import UplinkWatchdog

SERVER_NAME = "mpp-server.local"


@dataclass
class SiteBroker:
    """A running site broker made from generated files, with every account's password."""

    site: Site
    layout: BrokerLayout
    etc: Path
    ca: KeyPair
    passwords: dict[str, str]
    roles: dict[str, str]
    broker: Mosquitto
    files: dict[str, bytes] = field(default_factory=dict)
    uplink: UplinkWatchdog | None = None  # the bridge to the region, when there is one

    def rewrite(self, accounts: list[Account]) -> None:
        """Regenerate the files for `accounts` (keeping certificates) and hand them over."""
        files = render_broker_files(
            self.site,
            self.layout,
            accounts,
            ca_cert_pem=self.files["ca.crt"],
            server_cert_pem=self.files["server.crt"],
            server_key_pem=self.files["server.key"],
        )
        write_broker_files(self.etc, files)
        hand_to_mosquitto(self.etc)
        self.files = files

    def accounts(self, without: tuple[str, ...] = ()) -> list[Account]:
        """Accounts of every user but `without`, with the hashes in the current file."""
        hashes = dict(
            line.split(":", 1) for line in self.files["passwd"].decode().splitlines() if line
        )
        return [
            Account(user, self.roles[user], hashes[user])
            for user in self.roles
            if user not in without and user in hashes
        ]


def build_files(
    site: Site, layout: BrokerLayout, passwords: dict[str, str], roles: dict[str, str]
) -> tuple[KeyPair, dict[str, bytes]]:
    """Site CA, server certificate and every broker file for these accounts."""
    ca = make_ca(site.site.id)
    server = make_server_cert(ca, [SERVER_NAME])
    accounts = [Account(u, roles[u], hash_password(passwords[u])) for u in roles]
    return ca, render_broker_files(
        site,
        layout,
        accounts,
        ca_cert_pem=ca.cert_pem,
        server_cert_pem=server.cert_pem,
        server_key_pem=server.key_pem,
    )


@pytest.fixture(scope="module")
def broker_dir() -> Iterator[Path]:
    """A directory the mosquitto user can traverse (pytest's tmp root is private to root)."""
    top = Path(tempfile.mkdtemp(prefix="mpp-broker-test-"))
    top.chmod(0o755)
    yield top
    shutil.rmtree(top, ignore_errors=True)


def start_site_broker(
    top: Path,
    bridge: Bridge | None = None,
    site: Site | None = None,
    *,
    bridge_in_site_broker: bool = False,
    **watchdog: object,
) -> Iterator[SiteBroker]:
    """Generate every file for the example site (or `site`, whose broker port becomes the
    loopback listener's), install them and start the broker; with `bridge`, also the uplink
    broker bridging it to the region (under its watchdog, options `watchdog`).

    `bridge_in_site_broker` puts the bridge in the site broker itself instead, as sites had
    it before the uplink broker (to show what a resetting WAN did to it)."""
    site = site or make_site()
    roles = {HUB: HUB, WEB: WEB, MONITOR: MONITOR, UPLINK: UPLINK} | {
        d: dev.role for d, dev in site.devices.items()
    }
    passwords = {user: f"pw-{user}-{i}" for i, user in enumerate(roles)}
    layout = BrokerLayout(
        etc_dir=str(top / "etc"),
        data_dir=str(top / "data"),
        log_dest="stderr",
        loopback_port=site.broker.port if site.broker.port != 1883 else free_port(),
        device_port=free_port(),
        device_bind="127.0.0.1",
    )
    ca, files = build_files(site, layout, passwords, roles)
    if bridge is not None and bridge_in_site_broker:
        files[CONF] += render_bridge(site, bridge).encode()
    write_broker_files(top / "etc", files)
    hand_to_mosquitto(top / "etc", top / "data")
    with site_broker(top / "etc", layout.loopback_port) as broker:
        made = SiteBroker(site, layout, top / "etc", ca, passwords, roles, broker, files)
        if bridge is None or bridge_in_site_broker:
            yield made
            return
        uplink_dir = top / "uplink"
        conf = render_uplink_conf(
            site, UplinkLayout(etc_dir=str(uplink_dir), port=free_port()), bridge,
            passwords[UPLINK], layout,
        )  # fmt: skip
        write_broker_files(uplink_dir, {UPLINK_CONF: conf.encode()})
        with uplink_broker(uplink_dir, **watchdog) as made.uplink:
            yield made


@pytest.fixture(scope="module")
def site_broker_running(broker_dir: Path) -> Iterator[SiteBroker]:
    """One site broker for a test module (the matrix and auth tests share it)."""
    yield from start_site_broker(broker_dir)


class Probe:
    """A raw MQTT 5 client recording what it receives and the broker's PUBACK reason codes."""

    def __init__(
        self,
        sb: SiteBroker,
        user: str | None,
        password: str | None = None,
        *,
        tls: bool | None = None,
        ca_file: str | None = None,
        client_id: str | None = None,
    ) -> None:
        self.user = user
        self.received: queue.Queue[tuple[str, bytes, bool]] = queue.Queue()
        self.acks: dict[int, int] = {}
        self.ack_event = threading.Condition()
        self.connack: int | None = None
        self.connected = threading.Event()
        self.disconnected = threading.Event()
        tls = user != HUB if tls is None else tls
        self.port = sb.layout.device_port if tls else sb.layout.loopback_port
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or user or "anonymous-probe",
            protocol=paho.MQTTv5,
        )
        if user is not None:
            self.client.username_pw_set(
                user, password if password is not None else sb.passwords[user]
            )
        if tls:
            ca = ca_file or str(sb.etc / "ca.crt")
            self.client.tls_set(ca_certs=ca, tls_version=ssl.PROTOCOL_TLS_CLIENT)
        self.client.reconnect_delay_set(0.1, 0.2)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_publish = self._on_publish

    def _on_connect(self, _c, _u, _f, reason, _p) -> None:
        self.connack = reason.value
        if not reason.is_failure:
            self.connected.set()
        else:
            self.client.disconnect()  # refused: no reconnect attempts
            self.disconnected.set()

    def _on_disconnect(self, _c, _u, _f, _reason, _p) -> None:
        self.client.disconnect()  # a probe never reconnects: each test says when to connect
        self.connected.clear()
        self.disconnected.set()

    def _on_message(self, _c, _u, msg) -> None:
        self.received.put((msg.topic, msg.payload, bool(msg.retain)))

    def _on_publish(self, _c, _u, mid, reason, _p) -> None:
        with self.ack_event:
            self.acks[mid] = reason.value
            self.ack_event.notify_all()

    def connect(self, timeout: float = 5.0) -> bool:
        """Connect; True when the broker accepted (CONNACK success) within `timeout`."""
        self.client.connect("127.0.0.1", self.port, keepalive=15)
        self.client.loop_start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.connected.is_set():
                return True
            if self.connack is not None or self.disconnected.is_set():
                return False
            time.sleep(0.01)
        return False

    def subscribe(self, topic_filter: str) -> None:
        """Subscribe at QoS 1 and wait for the SUBACK."""
        done = threading.Event()
        self.client.on_subscribe = lambda *_a: done.set()
        self.client.subscribe(topic_filter, qos=1)
        assert done.wait(5), f"{self.user}: no SUBACK for {topic_filter}"

    def publish_all(self, topics: list[str], payload: Callable[[str], bytes]) -> dict[str, int]:
        """Publish QoS 1 to every topic; the PUBACK reason code of each (135 = not authorised)."""
        mids = {}
        for topic in topics:
            info = self.client.publish(topic, payload(topic), qos=1)
            mids[info.mid] = topic
        deadline = time.monotonic() + 10
        with self.ack_event:
            while not set(mids) <= set(self.acks) and time.monotonic() < deadline:
                self.ack_event.wait(0.1)
        missing = [mids[m] for m in mids if m not in self.acks]
        assert not missing, f"{self.user}: no PUBACK for {missing[:3]}"
        return {mids[mid]: self.acks[mid] for mid in mids}

    def drain(self) -> list[tuple[str, bytes, bool]]:
        """Everything received so far."""
        out = []
        while True:
            try:
                out.append(self.received.get_nowait())
            except queue.Empty:
                return out

    def close(self) -> None:
        """Disconnect cleanly and stop the network thread."""
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def probes() -> Iterator[list[Probe]]:
    """Probes made by a test, closed after it."""
    made: list[Probe] = []
    yield made
    for probe in made:
        probe.close()
