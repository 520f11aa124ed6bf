"""The broker's listener ports follow the inventory's `[broker] port` unless chosen by hand."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from protocol.site import parse_site
from provisioning.cli import main
from tests.conftest import example_text

TLS_BROKER = """[broker]
host = "mpp-server.local"
port = 9883
tls = true
"""


def with_broker(table: str) -> str:
    text = example_text()
    start = text.index("[broker]\n")
    end = text.index("\n[", start + 1) + 1
    return text[:start] + table + text[end:]


def provision(tmp_path: Path, text: str, *broker_args: str) -> list[str]:
    site_file = tmp_path / "site.toml"
    site_file.write_text(text)
    base = ["--site", str(site_file), "--secrets", str(tmp_path / "secrets")]
    runner = CliRunner()
    for args in (["init"], ["broker", "--out", str(tmp_path / "broker"), *broker_args]):
        result = runner.invoke(main, [*base, *args])
        assert result.exit_code == 0, result.output
    return base


def listeners(tmp_path: Path) -> list[str]:
    conf = (tmp_path / "broker" / "mosquitto.conf").read_text()
    return [line for line in conf.splitlines() if line.startswith("listener ")]


def bundled_port(tmp_path: Path, base: list[str], device: str) -> int:
    out = tmp_path / "bundles"
    result = CliRunner().invoke(main, [*base, "bundle", device, "--out", str(out)])
    assert result.exit_code == 0, result.output
    return parse_site((out / device / "site.toml").read_text()).broker.port


def test_a_tls_port_in_the_inventory_is_the_devices_listener(tmp_path: Path) -> None:
    base = provision(tmp_path, with_broker(TLS_BROKER))
    assert listeners(tmp_path) == ["listener 1883 127.0.0.1", "listener 9883"]
    assert bundled_port(tmp_path, base, "caller-03") == 9883
    assert bundled_port(tmp_path, base, "hub") == 1883
    # An edited inventory port reaches the broker files and the bundles at the next rewrite.
    (tmp_path / "site.toml").write_text(with_broker(TLS_BROKER.replace("9883", "9884")))
    assert CliRunner().invoke(main, [*base, "rotate", "kiosk-1"]).exit_code == 0
    assert listeners(tmp_path) == ["listener 1883 127.0.0.1", "listener 9884"]
    assert bundled_port(tmp_path, base, "kiosk-1") == 9884


def test_a_plain_port_is_the_hubs_loopback_listener(tmp_path: Path) -> None:
    plain = with_broker('[broker]\nhost = "127.0.0.1"\nport = 1999\n')
    base = provision(tmp_path, plain)
    assert listeners(tmp_path) == ["listener 1999 127.0.0.1", "listener 8883"]
    assert bundled_port(tmp_path, base, "hub") == 1999
    assert bundled_port(tmp_path, base, "tv-lobby-1") == 8883


def test_a_port_given_to_broker_wins_and_is_kept(tmp_path: Path) -> None:
    base = provision(tmp_path, with_broker(TLS_BROKER), "--device-port", "10883")
    assert listeners(tmp_path) == ["listener 1883 127.0.0.1", "listener 10883"]
    assert CliRunner().invoke(main, [*base, "rotate", "kiosk-1"]).exit_code == 0
    assert listeners(tmp_path) == ["listener 1883 127.0.0.1", "listener 10883"]
    assert bundled_port(tmp_path, base, "kiosk-1") == 10883
