"""`check` catches each class of mistake and names the key and the fix."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from provisioning.check import ERROR, WARNING, Finding, readiness, summary
from provisioning.cli import main
from provisioning.site_secrets import SiteSecrets
from tests.conftest import EXAMPLE, example_text

EXTRA_SERVICE = """
[services.extra]
agency = "dpmptsp"
prefix = "Y"
name = "Layanan tambahan"
time_class = "fast"
"""


def without_device(text: str, device: str) -> str:
    """The inventory without the [devices.DEVICE] table (and its sub-tables)."""
    pattern = rf"(?m)^\[devices\.{re.escape(device)}(\.[^\]]+)?\]\n(?:(?!\[).*\n?)*"
    result, count = re.subn(pattern, "", text)
    assert count, device
    return result


def in_table(text: str, table: str, old: str, new: str) -> str:
    """Replace `old` by `new` inside one table of the inventory only."""
    start = text.index(f"[{table}]\n")
    end = text.find("\n[", start + 1)
    end = len(text) if end == -1 else end
    assert old in text[start:end], (table, old)
    return text[:start] + text[start:end].replace(old, new, 1) + text[end:]


def find(findings: list[Finding], level: str, key: str, words: str) -> Finding:
    for finding in findings:
        if finding.level == level and finding.key == key and words in finding.message:
            return finding
    pytest.fail(f"no {level} {key}: ...{words}... in\n" + "\n".join(map(str, findings)))


def test_the_example_site_is_ready() -> None:
    findings = readiness(example_text())
    assert [f for f in findings if f.level == ERROR] == []
    assert summary(findings).startswith("READY: 0 error(s)")


# Each case: (how the inventory is broken, level, key, words of the message).
CASES = {
    "service without a counter": (
        lambda t: t + EXTRA_SERVICE,
        ERROR, "services.extra", "no counter serves it",
    ),
    "service whose counters have no caller box": (
        lambda t: without_device(t, "caller-18"),
        ERROR, "services.jht", "none of its counters (18) has a caller box",
    ),
    "counter without a caller box": (
        lambda t: without_device(t, "caller-07"),
        ERROR, "counters.7", 'no caller box; add [devices.caller-07] with role = "caller"',
    ),
    "two caller boxes on one counter": (
        lambda t: in_table(t, "devices.caller-08", "counter = 8", "counter = 7"),
        WARNING, "counters.7", "2 caller boxes (caller-07, caller-08)",
    ),
    "zone without a display": (
        lambda t: without_device(without_device(t, "tv-canteen-1"), "tv-canteen-2"),
        ERROR, "zones.canteen", "no display shows it",
    ),
    "kiosk without a printer": (
        lambda t: re.sub(r'(?m)^printer = \{ connection = "network".*\n', "", t),
        ERROR, "devices.kiosk-2.printer", "a kiosk without a printer cannot hand out tickets",
    ),
    "kiosk with a test printer": (
        lambda t: in_table(t, "devices.kiosk-4", 'connection = "serial"', 'connection = "dummy"'),
        WARNING, "devices.kiosk-4.printer.connection", "'dummy' is a test printer",
    ),
    "service no kiosk offers": (
        lambda t: in_table(
            in_table(t, "devices.kiosk-1", "screen = {", "buttons = { ktp = 5 }\n# screen = {"),
            "devices.kiosk-2", "screen = {", "buttons = { ktp = 5 }\n# screen = {",
        ),
        WARNING, "services.pindah", "no kiosk offers it",
    ),
    "GPIO pin used twice on a device": (
        lambda t: t.replace("akta = 13, pkb = 19", "akta = 6, pkb = 19"),
        ERROR, "devices.kiosk-3.buttons.akta", "pin 6 is already used by devices.kiosk-3.buttons.kk",
    ),
    "button on the LCD's I2C pin": (
        lambda t: in_table(t, "devices.caller-05", "recall = 27", "recall = 2"),
        ERROR, "devices.caller-05.buttons.recall", "GPIO2 is an I2C line the LCD uses",
    ),
    "pin that does not exist": (
        lambda t: in_table(t, "devices.kiosk-1", "buzzer = 12", "buzzer = 40"),
        ERROR, "devices.kiosk-1.buzzer", "GPIO40 does not exist",
    ),
    "prefix used twice": (
        lambda t: t.replace('prefix = "H"', 'prefix = "A"'),
        ERROR, "services.skck.prefix", "'A' is already used by services.ktp",
    ),
    "hours that close before they open": (
        lambda t: t.replace('mon = "07:30-16:00"', 'mon = "16:00-07:30"'),
        ERROR, "site.hours.mon", "closes before it opens",
    ),
    "hours at an odd time of day": (
        lambda t: t.replace('mon = "07:30-16:00"', 'mon = "04:00-16:00"'),
        WARNING, "site.hours.mon", "opens before 06:00",
    ),
    "a very short day": (
        # Sunday: no booking session falls on it (a short weekday would cut them off).
        lambda t: t.replace("# sun: closed", 'sun = "08:00-09:00"'),
        WARNING, "site.hours.sun", "open less than 2 hours",
    ),
    "a cut-off outside every opening time": (
        lambda t: t.replace('cutoff = "15:30"', 'cutoff = "23:00"'),
        ERROR, "services.info.cutoff", "outside the opening hours of every day",
    ),
    "a quota the counters cannot serve": (
        lambda t: in_table(t, "services.paspor", "daily_quota = 60", "daily_quota = 500"),
        WARNING, "services.paspor.daily_quota", "take longer than the longest day",
    ),
    "a device named like a broker account": (
        lambda t: t.replace("[devices.tv-lobby-3]", "[devices.monitor]"),
        ERROR, "devices.monitor", "'monitor' is the broker account",
    ),
    "a device id that is no hostname": (
        lambda t: t.replace("[devices.tv-lobby-3]", "[devices.tv_lobby_3]"),
        ERROR, "devices.tv_lobby_3.hostname", "'tv_lobby_3' is not a valid hostname",
    ),
    "two Pis with one hostname": (
        lambda t: in_table(t, "devices.tv-lobby-3", 'role = "display"',
                           'role = "display"\nhostname = "tv-lobby-2"'),
        ERROR, "devices.tv-lobby-3.hostname", "also the hostname of tv-lobby-2",
    ),
    "a transfer list without a transfer button": (
        lambda t: in_table(t, "devices.caller-01", "transfer = 23, ", ""),
        WARNING, "devices.caller-01.buttons.transfer", "no TRANSFER button",
    ),
    "a typo in a key": (
        lambda t: t.replace("daily_quota = 150", "daily_qouta = 150"),
        ERROR, "services.ktp.daily_qouta", "did you mean 'daily_quota'",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(CASES))
def test_check_names_each_mistake(case: str) -> None:
    breaking, level, key, words = CASES[case]
    finding = find(readiness(breaking(example_text()), "site.toml"), level, key, words)
    assert str(finding).startswith(f"{level.upper():<8} {key}: ")


def with_public_url(url: str) -> str:
    return re.sub(r'(?m)^public_url = ".*?"', f'public_url = "{url}"', example_text(), count=1)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080",
        "http://127.0.1.1:8080",  # what Debian's /etc/hosts gives the machine's own name
        "http://localhost:8080",
        "https://mpp.localhost",
        "http://[::1]:8080",
        "http://[::ffff:127.0.0.1]:8080",
        "http://0.0.0.0:8080",
        "http://169.254.10.2:8080",
        "http://[fe80::1]:8080",
    ],
)
def test_a_ticket_qr_phones_cannot_reach_is_not_ready(url: str) -> None:
    findings = readiness(with_public_url(url), "site.toml")
    finding = find(findings, ERROR, "site.public_url", "citizens' phones cannot open the ticket QR")
    assert 'set public_url = "http' in finding.message and "in [site]" in finding.message
    assert summary(findings).startswith("NOT READY")


def test_a_ticket_qr_on_the_lan_is_ready() -> None:
    for url in ("http://192.168.10.2:8080", "https://antrian.mpp.example", "http://10.0.0.5"):
        findings = readiness(with_public_url(url))
        assert [f for f in findings if f.key == "site.public_url"] == [], url
    mdns = readiness(with_public_url("http://mpp-server.local:8080"))
    find(mdns, WARNING, "site.public_url", "mDNS name that many Android phones cannot resolve")
    media = example_text().replace("[hub]\n", '[hub]\nmedia_url = "http://localhost:8080"\n')
    find(readiness(media), WARNING, "hub.media_url", "display Pis cannot open the images")


def test_cli_fails_on_a_loopback_ticket_qr(tmp_path: Path) -> None:
    site_file = tmp_path / "site.toml"
    site_file.write_text(with_public_url("http://127.0.0.1:8080"), encoding="utf-8")
    result = CliRunner().invoke(main, ["check", str(site_file)])
    assert result.exit_code == 1, result.output
    assert (
        "ERROR    site.public_url: 127.0.0.1 is a loopback address (the device that reads it): "
        "citizens' phones cannot open the ticket QR; "
        'set public_url = "http://192.168.10.2:8080" in [site]' in result.output
    )
    assert "NOT READY: 1 error(s)" in result.output


def test_secrets_problems(tmp_path: Path) -> None:
    from protocol.site import parse_site

    site = parse_site(example_text())
    store = SiteSecrets(tmp_path / "s")
    store.init(site, ["mpp-server.local"])
    assert [f for f in readiness(example_text(), store=store) if f.level == ERROR] == []
    store.revoke("caller-03")
    findings = readiness(example_text(), store=store)
    find(findings, ERROR, "devices.caller-03", "broker account is revoked")
    added = example_text() + '\n[devices.tv-hall]\nrole = "display"\nzone = "lobby"\n'
    find(readiness(added, store=store), ERROR, "devices.tv-hall", "no broker account yet")
    removed = without_device(example_text(), "tv-lobby-3")
    find(readiness(removed, store=store), WARNING, "devices.tv-lobby-3", "still has a broker")
    loopback = SiteSecrets(tmp_path / "l")
    loopback.init(site)  # servers default to broker.host = 127.0.0.1
    find(readiness(example_text(), store=loopback), ERROR, "broker.host", "names only this machine")


def test_cli_exit_status(tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(main, ["check", str(EXAMPLE)])
    assert ok.exit_code == 0, ok.output
    assert "READY: 0 error(s)" in ok.output
    assert runner.invoke(main, ["check", "--strict", str(EXAMPLE)]).exit_code == 1
    bad = tmp_path / "bad.toml"
    bad.write_text(without_device(example_text(), "caller-07"))
    result = runner.invoke(main, ["check", str(bad)])
    assert result.exit_code == 1
    assert "ERROR    counters.7: no caller box" in result.output
    assert "NOT READY: 1 error(s)" in result.output
    garbage = tmp_path / "garbage.toml"
    garbage.write_bytes(b"\x00\xff[[[")
    result = runner.invoke(main, ["check", str(garbage)])
    assert result.exit_code == 1 and "not UTF-8 text" in result.output
    missing = runner.invoke(main, ["check", str(tmp_path / "nope.toml")])
    assert missing.exit_code == 1 and "cannot read the file" in missing.output


def test_check_before_init_with_secrets_set(tmp_path: Path) -> None:
    """MPP_SECRETS names where `init` will put the secrets: `check` runs before that."""
    secrets = tmp_path / "not-yet"
    result = CliRunner().invoke(main, ["check", str(EXAMPLE)], env={"MPP_SECRETS": str(secrets)})
    assert result.exit_code == 0, result.output
    assert "no secrets in" in result.output and "READY" in result.output
    assert not secrets.exists()


@pytest.mark.parametrize(
    ("url", "level", "words"),
    [
        ("http://192.168.10.2:8090", ERROR, "private (LAN) address: phones on mobile data"),
        ("http://127.0.0.1:8090", ERROR, "phones on mobile data cannot open the ticket QR"),
        ("http://antrian.kalselprov.go.id", WARNING, "is not https"),
    ],
)
def test_the_regions_public_address_must_reach_phones_on_mobile_data(url, level, words) -> None:
    text = example_text() + f'\n[region]\npublic_url = "{url}"\n'
    find(readiness(text, "site.toml"), level, "region.public_url", words)
    fine = example_text() + '\n[region]\npublic_url = "https://antrian.kalselprov.go.id"\n'
    assert [f for f in readiness(fine) if f.key == "region.public_url"] == []


def test_the_bridge_to_the_region_belongs_in_the_uplink_broker(tmp_path: Path) -> None:
    """A site bridged the old way (the bridge inside the site broker, which a resetting WAN can
    hang) is not ready; a [region] site without a bridge is told its events wait."""
    from broker_config.files import Bridge, BrokerLayout
    from protocol.site import parse_site
    from provisioning.site_broker import write_site_broker

    site = parse_site(example_text())
    store = SiteSecrets(tmp_path / "s")
    store.init(site, ["mpp-server.local"])
    regional = example_text() + "\n[region]\n"
    assert readiness(regional, store=store) == readiness(example_text(), store=store)  # no run
    write_site_broker(site, store, tmp_path / "broker", BrokerLayout())
    find(readiness(regional, store=store), WARNING, "region", "broker files have no bridge")
    assert not [f for f in readiness(example_text(), store=store) if f.key == "region"]
    bridge = Bridge("region.example", 8883, "kalsel/v1", "mpp-banjarbaru", "pw", "/ca.crt")
    write_site_broker(site, store, tmp_path / "broker", BrokerLayout(), bridge)
    assert [f for f in readiness(regional, store=store) if f.level == ERROR] == []
    assert not [f for f in readiness(regional, store=store) if f.key in ("region", "broker")]
    settings = store.broker_settings()
    assert settings is not None
    del settings["uplink"]  # as `broker --bridge` wrote them before the uplink broker
    store.save_broker_settings(settings)
    find(readiness(regional, store=store), ERROR, "broker", "bridge to the region in the site")
