"""The technician's round trip against a real Mosquitto started from `broker`'s files."""

from __future__ import annotations

from broker_config.local import trouble
from protocol.mqtt import Bus
from provisioning.cli import main
from tests.provisioning.conftest import Provisioned, provision
from tests.timing import wait_until


def device_bus(p: Provisioned, device: str, password: str | None = None) -> Bus:
    """A device's Bus as its bundle configures it: TLS, the site CA, its own password."""
    site = p.site
    role = site.devices[device].role if device in site.devices else "display"  # a removed one
    return Bus(
        site.site.id, device, role,
        host="127.0.0.1", port=p.device_port, tls_ca=str(p.secrets / "ca.crt"),
        username=device, password=password or p.store.password(device),
        min_delay=0.1, max_delay=0.2,
    )  # fmt: skip


def test_every_account_connects_and_the_log_is_clean(provisioned: Provisioned) -> None:
    buses = [device_bus(provisioned, d) for d in ("kiosk-1", "caller-03", "tv-lobby-1")]
    hub = Bus.for_device(
        provisioned.site, "hub", port=provisioned.loopback_port,
        username="hub", password=provisioned.store.password("hub"),
    )  # fmt: skip
    try:
        for bus in [*buses, hub]:
            assert bus.start(wait=10), bus.device
    finally:
        for bus in [*buses, hub]:
            bus.stop()
    assert provisioned.broker is not None
    assert trouble(provisioned.broker.log()) == []


def test_revoked_device_is_refused_by_the_real_broker(provisioned: Provisioned) -> None:
    old_password = provisioned.store.password("caller-05")
    connected = device_bus(provisioned, "caller-05")
    assert connected.start(wait=10)
    lost = []
    connected.on_connection_change(lambda up: lost.append(up) if not up else None)
    try:
        result = provisioned.run("revoke", "caller-05")
        assert result.exit_code == 0, result.output
        assert "broker files rewritten" in result.output
        assert "caller-05:" not in (provisioned.broker_dir / "passwd").read_text()
        provisioned.reload()
        assert wait_until(lambda: lost, 5), (
            "the revoked device's open session should be closed at reload"
        )
    finally:
        connected.stop()
    again = device_bus(provisioned, "caller-05", password=old_password)
    try:
        assert not again.start(wait=1)
    finally:
        again.stop()
    result = provisioned.run("check")
    assert "devices.caller-05: its broker account is revoked" in result.output


def test_replace_moves_the_slot(provisioned: Provisioned) -> None:
    old_password = provisioned.store.password("tv-lobby-2")
    result = provisioned.run("replace", "tv-lobby-2", "tv-lobby-2b")
    assert result.exit_code == 0, result.output
    site = provisioned.site
    assert "tv-lobby-2" not in site.devices and site.devices["tv-lobby-2b"].zone == "lobby"
    assert "# Site inventory of an example MPP" in provisioned.site_file.read_text()
    provisioned.reload()
    old = device_bus(provisioned, "tv-lobby-2", password=old_password)
    new = device_bus(provisioned, "tv-lobby-2b")
    try:
        assert not old.start(wait=1)
        assert new.start(wait=10)
    finally:
        old.stop()
        new.stop()


def test_rotate_gives_a_new_password(provisioned: Provisioned) -> None:
    before = provisioned.store.password("kiosk-2")
    assert provisioned.run("rotate", "kiosk-2").exit_code == 0
    provisioned.reload()
    stale, fresh = device_bus(provisioned, "kiosk-2", before), device_bus(provisioned, "kiosk-2")
    try:
        assert not stale.start(wait=1)
        assert fresh.start(wait=10)
    finally:
        stale.stop()
        fresh.stop()


def test_mistakes_are_reported_not_raised(tmp_path) -> None:
    from click.testing import CliRunner

    runner = CliRunner()
    no_site = runner.invoke(main, ["init"])
    assert no_site.exit_code == 2 and "give the site inventory" in no_site.output
    p = provision(tmp_path / "p", "prov-mistakes")
    no_init = runner.invoke(
        main, ["--site", str(p.site_file), "--secrets", str(tmp_path / "none"), "broker"]
    )
    assert no_init.exit_code == 1 and "run `mpp-provision init` first" in no_init.output
    assert p.run("revoke", "hub").exit_code == 1
    assert p.run("replace", "kiosk-1", "kiosk-2").exit_code == 1
    assert p.run("revoke", "nope").exit_code == 1
    bad_bridge = p.run("broker", "--bridge", "no-port")
    assert bad_bridge.exit_code == 2 and "HOST:PORT" in bad_bridge.output
    for result in (no_init, bad_bridge):
        assert "Traceback" not in result.output


def test_the_broker_logs_a_publish_its_acl_refuses(provisioned: Provisioned) -> None:

    caller = device_bus(provisioned, "caller-03")
    try:
        assert caller.start(wait=10)
        # A caller box may not issue tickets: the ACL refuses the topic of a kiosk's command.
        forbidden = caller.topics.command("caller-03", "issue")
        caller.publish(forbidden, b"{}", qos=1)
        assert provisioned.broker is not None
        denied_in_log = lambda: "Denied PUBLISH from caller-03" in provisioned.broker.log()  # noqa: E731
        assert wait_until(denied_in_log, 5), provisioned.broker.log()[-2000:]
    finally:
        caller.stop()
    denied = [x for x in provisioned.broker.log().splitlines() if "Denied PUBLISH" in x]
    assert forbidden in denied[-1]
