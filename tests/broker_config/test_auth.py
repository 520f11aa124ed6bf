"""Who gets in: passwords, TLS with the site CA, client ids, and revocation on reload."""

from __future__ import annotations

import socket
import ssl
import time
from pathlib import Path

import pytest

from broker_config.acl import HUB, MONITOR
from broker_config.tls import cert_hosts, make_ca
from protocol.topics import Topics
from tests.broker_config.conftest import SERVER_NAME, Probe, SiteBroker, start_site_broker

NOT_AUTHORIZED = 135
BAD_USER_OR_PASSWORD = 134


@pytest.mark.parametrize("tls", [True, False], ids=["device-listener", "loopback-listener"])
def test_anonymous_is_refused(site_broker_running: SiteBroker, probes, tls: bool) -> None:
    probe = Probe(site_broker_running, None, tls=tls)
    probes.append(probe)
    assert not probe.connect()
    assert probe.connack == NOT_AUTHORIZED


@pytest.mark.parametrize("user", ["caller-03", HUB, MONITOR])
def test_wrong_password_is_refused(site_broker_running: SiteBroker, probes, user: str) -> None:
    probe = Probe(site_broker_running, user, "not-the-password")
    probes.append(probe)
    assert not probe.connect()
    assert probe.connack in (NOT_AUTHORIZED, BAD_USER_OR_PASSWORD)


def test_unknown_user_is_refused(site_broker_running: SiteBroker, probes) -> None:
    probe = Probe(site_broker_running, "caller-99", "pw-caller-99")
    probes.append(probe)
    assert not probe.connect()


def test_device_with_the_site_ca_connects(site_broker_running: SiteBroker, probes) -> None:
    probe = Probe(site_broker_running, "kiosk-1", tls=True)
    probes.append(probe)
    assert probe.connect(), probe.connack


def tls_handshake(port: int, ca_pem: bytes, hostname: str = "127.0.0.1") -> str:
    """Open a TLS connection as a device's client would (paho uses the same ssl settings)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cadata=ca_pem.decode())
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=hostname) as tls,
    ):
        return tls.version() or ""


def test_device_with_a_foreign_ca_does_not(site_broker_running: SiteBroker) -> None:
    port = site_broker_running.layout.device_port
    assert tls_handshake(port, site_broker_running.ca.cert_pem) in ("TLSv1.2", "TLSv1.3")
    with pytest.raises(ssl.SSLCertVerificationError, match="certificate verify failed"):
        tls_handshake(port, make_ca("another-site").cert_pem)


def test_a_name_not_in_the_certificate_is_refused(site_broker_running: SiteBroker) -> None:
    port = site_broker_running.layout.device_port
    assert tls_handshake(port, site_broker_running.ca.cert_pem, SERVER_NAME)
    with pytest.raises(ssl.SSLCertVerificationError, match="mismatch"):
        tls_handshake(port, site_broker_running.ca.cert_pem, "evil.local")


def test_plain_mqtt_on_the_tls_port_gets_nothing(site_broker_running: SiteBroker) -> None:
    probe = Probe(site_broker_running, "kiosk-1", tls=False)
    probe.port = site_broker_running.layout.device_port
    assert not probe.connect(timeout=2)
    probe.close()


def test_server_certificate_names_the_server_and_loopback(site_broker_running) -> None:
    hosts = cert_hosts(site_broker_running.files["server.crt"])
    assert hosts[:1] == [SERVER_NAME] and "127.0.0.1" in hosts


def test_client_id_cannot_knock_another_client_off(site_broker_running: SiteBroker, probes) -> None:
    hub = Probe(site_broker_running, HUB)
    probes.append(hub)
    assert hub.connect()
    impostor = Probe(site_broker_running, "caller-03", client_id=HUB)
    probes.append(impostor)
    assert impostor.connect()
    time.sleep(0.3)
    assert hub.connected.is_set() and not hub.disconnected.is_set()


def test_revoked_device_is_refused_after_reload(broker_dir: Path, probes) -> None:
    gen = start_site_broker(broker_dir / "revoke")
    (broker_dir / "revoke").mkdir()
    (broker_dir / "revoke").chmod(0o755)
    sb = next(gen)
    try:
        t = Topics(sb.site.site.id)
        staying, revoked = Probe(sb, "caller-04"), Probe(sb, "caller-03")
        probes += [staying, revoked]
        assert staying.connect() and revoked.connect()
        sb.rewrite(sb.accounts(without=("caller-03",)))
        sb.broker.reload()
        # The connected session of the revoked device is closed at reload; others stay.
        assert revoked.disconnected.wait(5)
        assert staying.connected.is_set()
        again = Probe(sb, "caller-03")
        probes.append(again)
        assert not again.connect()
        assert again.connack == NOT_AUTHORIZED
        assert "user caller-03" not in sb.files["acl"].decode()
        assert staying.publish_all([t.command("caller-04", "next")], lambda _t: b"{}") == {
            t.command("caller-04", "next"): 16  # accepted; nobody subscribed
        }
    finally:
        for probe in probes:  # before the broker stops, or they would try to reconnect
            probe.close()
        probes.clear()
        gen.close()
