"""Generated broker files: reproducible, accepted by Mosquitto without a warning, bridged out."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from broker_config.acl import HUB
from broker_config.files import (
    Account,
    Bridge,
    BrokerConfigError,
    BrokerLayout,
    bridged_topics,
    render_broker_files,
    render_conf,
    template,
)
from broker_config.local import trouble
from broker_config.passwords import (
    PasswordFileError,
    hash_password,
    password_file,
    verify_password,
)
from broker_config.uplink import UplinkLayout, render_uplink_conf
from protocol.brokers import Mosquitto
from protocol.topics import Topics
from tests.broker_config.conftest import Probe, SiteBroker, start_site_broker
from tests.conftest import EXAMPLE, make_site
from tests.timing import wait_until


def test_broker_starts_and_reloads_without_error_or_warning(site_broker_running) -> None:
    sb: SiteBroker = site_broker_running
    sb.broker.reload()
    wait_until(lambda: "Reloading config" in sb.broker.log(), 5)
    log = sb.broker.log()
    assert "mosquitto version 2.0" in log and "running" in log and "Reloading config" in log
    assert trouble(log) == [], log
    assert "should not be run as root" not in log


def test_same_inventory_gives_the_same_files() -> None:
    site = make_site(site_id="repro")
    layout = BrokerLayout()
    accounts = [Account(HUB, HUB, hash_password("h"))] + [
        Account(d, dev.role, hash_password(d)) for d, dev in site.devices.items()
    ]
    tls = {"ca_cert_pem": b"ca", "server_cert_pem": b"crt", "server_key_pem": b"key"}
    first = render_broker_files(site, layout, accounts, **tls)
    # Same inventory, devices listed in another order: the ACL does not change.
    again = render_broker_files(site, layout, list(reversed(accounts)), **tls)
    assert first == again
    # A second process renders the same bytes (no set or dict order leaks in).
    code = (
        "from broker_config.acl import render_acl;"
        "from tests.conftest import make_site;"
        "s = make_site(site_id='repro');"
        "import sys; sys.stdout.write(render_acl('repro', {'hub': 'hub'} | "
        "{d: v.role for d, v in s.devices.items()}))"
    )
    out = subprocess.run(
        [".venv/bin/python", "-c", code],
        cwd=EXAMPLE.parent.parent,
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "12345"},
    )
    assert out.stdout.encode() == first["acl"]


def test_production_defaults_in_the_config() -> None:
    text = render_conf(make_site(site_id="prod"), BrokerLayout())
    lines = set(text.splitlines())
    for line in (
        "allow_anonymous false",
        "per_listener_settings false",
        "password_file /etc/mosquitto/mpp/passwd",
        "acl_file /etc/mosquitto/mpp/acl",
        "listener 1883 127.0.0.1",
        "listener 8883",
        "cafile /etc/mosquitto/mpp/ca.crt",
        "persistence true",
        "max_packet_size 32768",
        "max_queued_messages 10000",
        "user mosquitto",
        "log_dest file /var/log/mosquitto/mosquitto.log",
    ):
        assert line in lines, line
    assert "$" not in text.replace("$7$", "")  # every template field was filled


def test_layout_mistakes_are_named() -> None:
    with pytest.raises(BrokerConfigError, match="etc_dir: 'etc' must be an absolute path"):
        BrokerLayout(etc_dir="etc")
    with pytest.raises(BrokerConfigError, match="different ports"):
        BrokerLayout(loopback_port=1883, device_port=1883)
    with pytest.raises(BrokerConfigError, match="bridge prefix"):
        Bridge("region.example", prefix="/kalsel/")
    with pytest.raises(BrokerConfigError, match="both a username and a password"):
        Bridge("region.example", username="bjb")


def test_templates_ship_as_package_data() -> None:
    assert "listener $device_port" in template("mosquitto.conf.tmpl").template
    assert "connection $connection" in template("bridge.conf.tmpl").template


def test_our_hashes_and_mosquitto_passwd_agree(tmp_path: Path) -> None:
    path = tmp_path / "pw"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(path), "kiosk-1", "rahasia"], check=True)
    theirs = path.read_text().strip().split(":", 1)[1]
    assert theirs.startswith("$7$")
    assert verify_password("rahasia", theirs) and not verify_password("salah", theirs)
    ours = hash_password("rahasia", salt=b"0123456789ab", iterations=101)
    assert verify_password("rahasia", ours)
    assert ours.split("$")[2] == theirs.split("$")[2] == "101"


def test_password_file_refuses_what_mosquitto_would_misread() -> None:
    with pytest.raises(PasswordFileError, match="not a device id"):
        password_file({"Kiosk 1": hash_password("x")})
    with pytest.raises(PasswordFileError, match="not a \\$7\\$ hash"):
        password_file({"kiosk-1": "plaintext"})
    with pytest.raises(PasswordFileError, match="empty password"):
        hash_password("")


def test_uplink_carries_up_out_and_down_in_and_nothing_else(broker_dir: Path, probes) -> None:
    with Mosquitto() as regional:
        top = broker_dir / "bridge"
        top.mkdir()
        top.chmod(0o755)
        bridge = Bridge("127.0.0.1", regional.port, prefix="kalsel/v1")
        gen = start_site_broker(top, bridge=bridge)
        sb = next(gen)
        try:
            t = Topics(sb.site.site.id)
            remote = Topics(sb.site.site.id, "kalsel/v1")
            received: list[tuple[str, bytes]] = []
            watcher = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
            watcher.on_message = lambda _c, _u, msg: received.append((msg.topic, msg.payload))
            watcher.connect("127.0.0.1", regional.port)
            watcher.subscribe("#", qos=1)
            watcher.loop_start()
            hub, caller = Probe(sb, HUB), Probe(sb, "caller-03")
            probes += [hub, caller]
            assert hub.connect() and caller.connect()
            hub.subscribe(t.ack())
            assert sb.uplink is not None
            uplink_log = sb.uplink.config.parent / "uplink.log"
            # Both of the uplink's bridges are up: into the site broker, and to the region.
            wait_until(lambda: "as uplink" in sb.broker.log(), 10)
            wait_until(lambda: "bridge-" in regional.log(), 10)
            time.sleep(0.3)  # the bridges' subscriptions (up/ here, down/ at the region)
            batch = json.dumps({"v": 1, "after": 0}).encode()
            hub.client.publish(t.events(), batch, qos=1).wait_for_publish(5)
            state = json.dumps({"v": 1, "counter": 3}).encode()
            hub.client.publish(t.counter_state(3), state, qos=1, retain=True).wait_for_publish(5)
            caller.client.publish(t.command("caller-03", "next"), b"{}", qos=1).wait_for_publish(5)
            hub.client.publish(t.reply("caller-03"), b"{}", qos=1).wait_for_publish(5)
            wait_until(lambda: remote.events() in dict(received), 10)
            ack = json.dumps({"v": 1, "acked": 1}).encode()
            watcher.publish(remote.ack(), ack, qos=1).wait_for_publish(5)
            came_in = wait_until(lambda: [p for topic, p, _ in hub.drain() if topic == t.ack()], 10)
            time.sleep(0.3)
            watcher.loop_stop()
            watcher.disconnect()
            assert dict(received).get(remote.events()) == batch
            assert came_in == [ack]
            went_out = {topic for topic, _ in received}
            assert went_out == {remote.events(), remote.ack()}  # no state, command or reply
            assert trouble(sb.broker.log()) == [], sb.broker.log()
            assert trouble(uplink_log.read_text()) == [], uplink_log.read_text()
            assert "\nconnection " not in sb.files["mosquitto.conf"].decode()  # no bridge here
        finally:
            for probe in probes:
                probe.close()
            probes.clear()
            gen.close()


def test_bridge_topics_are_the_up_and_down_rows() -> None:
    assert bridged_topics() == ("up/#", "down/#")
    site = make_site(site_id="bjb")
    assert "\nconnection " not in render_conf(site, BrokerLayout())  # the site broker: none
    text = render_uplink_conf(site, UplinkLayout(), Bridge("region.example"), "pw-uplink")
    into_site, to_region = text.split("\nconnection ")[1:]
    assert "address 127.0.0.1:1883" in into_site
    assert "remote_username uplink\nremote_password pw-uplink" in into_site
    assert "topic up/# in 1 mpp/v1/bjb/ mpp/v1/bjb/" in into_site
    assert "topic down/# out 1 mpp/v1/bjb/ mpp/v1/bjb/" in into_site
    assert "cleansession true" in into_site.splitlines()
    assert "topic up/# out 1 mpp/v1/bjb/ mpp/v1/bjb/" in to_region
    assert "topic down/# in 1 mpp/v1/bjb/ mpp/v1/bjb/" in to_region
    assert "cleansession false" in to_region.splitlines()
    assert "listener 1884 127.0.0.1" in text.splitlines()  # for the watchdog's probe only
    assert "password_file" not in text  # nobody logs in to the uplink broker


def test_uplink_conf_mistakes_are_named() -> None:
    site = make_site(site_id="bjb")
    with pytest.raises(BrokerConfigError, match="one of the site broker's"):
        render_uplink_conf(site, UplinkLayout(port=1883), Bridge("r.example"), "pw")
    with pytest.raises(BrokerConfigError, match="password is empty"):
        render_uplink_conf(site, UplinkLayout(), Bridge("r.example"), "")
    with pytest.raises(BrokerConfigError, match="absolute path"):
        UplinkLayout(etc_dir="uplink")
