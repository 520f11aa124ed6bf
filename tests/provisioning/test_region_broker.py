"""`mpp-provision region-broker`: per-site accounts, the ACL from the topic table, TLS files."""

from __future__ import annotations

import stat
from pathlib import Path

from click.testing import CliRunner

from broker_config.passwords import verify_password
from provisioning.cli import main

REGION = """
[region]
id = "kalsel"
name = "Provinsi Kalimantan Selatan"
timezone = "Asia/Makassar"
[broker]
prefix = "kalsel/v1"
"""


def write_region(path: Path, sites: list[str]) -> Path:
    text = REGION + "".join(f'[[sites]]\nid = "{s}"\nname = "MPP {s}"\n' for s in sites)
    path.write_text(text, encoding="utf-8")
    return path


def run(tmp_path: Path, sites: list[str]):
    config = write_region(tmp_path / "region.toml", sites)
    args = ["region-broker", str(config), "--secrets", str(tmp_path / "secrets"),
            "--out", str(tmp_path / "out"), "--server", "region.kalsel.example"]  # fmt: skip
    return CliRunner().invoke(main, args)


def test_accounts_acl_and_tls_files(tmp_path: Path) -> None:
    result = run(tmp_path, ["mpp-banjarbaru", "mpp-martapura"])
    assert result.exit_code == 0, result.output
    out = tmp_path / "out"
    acl = (out / "acl").read_text()
    assert acl.split("\n\n", 1)[1] == (
        "# the region service: every site's up/ in, every site's down/ out\n"
        "user region\n"
        "topic read kalsel/v1/+/up/events\n"
        "topic read kalsel/v1/+/up/catalog\n"
        "topic read kalsel/v1/+/up/queue\n"
        "topic read kalsel/v1/+/up/booking\n"
        "topic read kalsel/v1/+/up/received\n"
        "topic write kalsel/v1/+/down/ack\n"
        "topic write kalsel/v1/+/down/messages\n"
        "\n# site mpp-banjarbaru (its bridge)\n"
        "user mpp-banjarbaru\n"
        "topic write kalsel/v1/mpp-banjarbaru/up/events\n"
        "topic write kalsel/v1/mpp-banjarbaru/up/catalog\n"
        "topic write kalsel/v1/mpp-banjarbaru/up/queue\n"
        "topic write kalsel/v1/mpp-banjarbaru/up/booking\n"
        "topic write kalsel/v1/mpp-banjarbaru/up/received\n"
        "topic read kalsel/v1/mpp-banjarbaru/down/ack\n"
        "topic read kalsel/v1/mpp-banjarbaru/down/messages\n"
        "\n# site mpp-martapura (its bridge)\n"
        "user mpp-martapura\n"
        "topic write kalsel/v1/mpp-martapura/up/events\n"
        "topic write kalsel/v1/mpp-martapura/up/catalog\n"
        "topic write kalsel/v1/mpp-martapura/up/queue\n"
        "topic write kalsel/v1/mpp-martapura/up/booking\n"
        "topic write kalsel/v1/mpp-martapura/up/received\n"
        "topic read kalsel/v1/mpp-martapura/down/ack\n"
        "topic read kalsel/v1/mpp-martapura/down/messages\n"
    )
    hashes = dict(line.split(":", 1) for line in (out / "passwd").read_text().splitlines())
    assert set(hashes) == {"region", "mpp-banjarbaru", "mpp-martapura"}
    bridge_pw = (tmp_path / "secrets" / "bridges" / "mpp-banjarbaru").read_text().strip()
    assert verify_password(bridge_pw, hashes["mpp-banjarbaru"])
    service_pw = (out / "region-broker-password").read_text().strip()
    assert verify_password(service_pw, hashes["region"])
    for private in ("server.key", "region-broker-password", "mosquitto.conf"):
        assert stat.S_IMODE((out / private).stat().st_mode) == 0o600
    conf = (out / "mosquitto.conf").read_text()
    assert "allow_anonymous false" in conf and "listener 8883" in conf and "$" not in conf
    # The same configuration again: the same files; a site removed loses its account.
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert run(tmp_path, ["mpp-banjarbaru", "mpp-martapura"]).exit_code == 0
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert run(tmp_path, ["mpp-banjarbaru"]).exit_code == 0
    assert "mpp-martapura" not in (out / "passwd").read_text()
    assert "mpp-martapura" not in (out / "acl").read_text()


def test_a_bad_configuration_is_named(tmp_path: Path) -> None:
    path = tmp_path / "region.toml"
    path.write_text(REGION + '[[sites]]\nid = "Bad Id"\nname = "x"\n', encoding="utf-8")
    result = CliRunner().invoke(main, ["region-broker", str(path), "--out", str(tmp_path / "o")])
    assert result.exit_code == 1
    assert "sites.0.id" in result.output and "region.toml" in result.output
