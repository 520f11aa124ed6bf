"""Device bundles hold exactly what they should; the unit verifies; first boot installs them."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from protocol.site import parse_site
from provisioning.bundle import BundleOptions, service_args, write_bundle
from provisioning.cli import main
from provisioning.inventory import Inventory
from provisioning.site_secrets import SiteSecrets
from tests.conftest import EXAMPLE, example_text

VENV = Path(sys.executable).parent.parent  # holds bin/mpp: an ExecStart that exists here
COMMON = {"manifest.json", "site.toml", "ca.crt", "broker-password", "firstboot.sh"}
EXPECTED = {
    "kiosk-1": COMMON | {"mpp-kiosk.service", "60-mpp-printer.rules"},  # USB printer
    "kiosk-2": COMMON | {"mpp-kiosk.service"},  # network printer: no udev rule
    "kiosk-4": COMMON | {"mpp-kiosk.service"},  # serial printer
    "caller-03": COMMON | {"mpp-caller.service"},
    "tv-canteen-1": COMMON | {"mpp-display.service"},
    "hub": COMMON | {"mpp-hub.service"},
}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> SiteSecrets:
    secrets = tmp_path_factory.mktemp("bundle") / "secrets"
    result = CliRunner().invoke(
        main, ["--site", str(EXAMPLE), "--secrets", str(secrets), "init", "--server", "mpp.local"]
    )
    assert result.exit_code == 0, result.output
    return SiteSecrets.open(secrets)


def make(store: SiteSecrets, device: str, out: Path, **options) -> Path:
    return write_bundle(
        Inventory.parse(example_text(), str(EXAMPLE)),
        store,
        device,
        out_dir=out,
        options=BundleOptions(**options),
    )


def unit_sections(text: str) -> dict[str, list[tuple[str, str]]]:
    """A systemd unit as {section: [(key, value), ...]} (keys may repeat)."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current = ""
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            current = line.strip("[]")
            sections[current] = []
        else:
            key, _, value = line.partition("=")
            sections[current].append((key, value))
    return sections


@pytest.mark.parametrize("device", list(EXPECTED))
def test_bundle_holds_exactly_its_files(store: SiteSecrets, tmp_path: Path, device: str) -> None:
    bundle = make(store, device, tmp_path)
    assert {p.name for p in bundle.iterdir()} == EXPECTED[device]
    assert (bundle / "broker-password").read_text().strip() == store.password(device)
    assert stat.S_IMODE((bundle / "broker-password").stat().st_mode) == 0o600
    assert (bundle / "ca.crt").read_bytes() == store.ca.cert_pem
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["device"] == device and manifest["site"] == "mpp-banjarbaru"
    assert set(manifest["files"]) == EXPECTED[device] - {"manifest.json"}
    for name, digest in manifest["files"].items():
        assert hashlib.sha256((bundle / name).read_bytes()).hexdigest() == digest, name
    # No key of the site and no other account's password, anywhere in the bundle.
    others = {store.password(n) for n in store.accounts if n != device}
    for path in bundle.iterdir():
        data = path.read_text()
        assert "PRIVATE KEY" not in data, path.name
        assert not any(password in data for password in others), path.name
    site = parse_site((bundle / "site.toml").read_text())
    assert list(site.devices) == ([device] if device != "hub" else list(site.devices))


def test_slice_points_devices_at_the_tls_listener(store: SiteSecrets, tmp_path: Path) -> None:
    device = parse_site((make(store, "caller-03", tmp_path) / "site.toml").read_text())
    assert (device.broker.host, device.broker.port, device.broker.tls) == ("mpp.local", 8883, True)
    hub = parse_site((make(store, "hub", tmp_path) / "site.toml").read_text())
    assert (hub.broker.host, hub.broker.port, hub.broker.tls) == ("127.0.0.1", 1883, False)


@pytest.mark.parametrize("device", ["kiosk-1", "caller-03", "tv-lobby-1", "hub"])
def test_unit_has_notify_watchdog_restart_and_limits(
    store: SiteSecrets, tmp_path: Path, device: str
) -> None:
    bundle = make(store, device, tmp_path)
    role = "hub" if device == "hub" else parse_site(example_text()).devices[device].role
    unit = unit_sections((bundle / f"mpp-{role}.service").read_text())
    service, head = dict(unit["Service"]), dict(unit["Unit"])
    assert service["Type"] == "notify" and service["WatchdogSec"] == "30"
    assert service["LimitNOFILE"] == "65536"
    assert service["Restart"] == "always"
    assert head["StartLimitIntervalSec"] == "600" and head["StartLimitBurst"] == "20"
    assert service["LoadCredential"] == "mpp-broker-password:/etc/mpp/broker-password"
    assert service["ExecStart"].startswith(f"/opt/mpp/venv/bin/mpp {role} ")
    assert "--site /etc/mpp/site.toml" in service["ExecStart"]
    assert (f"--device {device}" in service["ExecStart"]) == (role != "hub")
    assert dict(unit["Install"])["WantedBy"] == "multi-user.target"


@pytest.mark.parametrize("device", ["kiosk-1", "caller-03", "tv-lobby-1", "hub"])
def test_unit_passes_systemd_analyze_verify(
    store: SiteSecrets, tmp_path: Path, device: str
) -> None:
    # systemd-analyze checks that ExecStart exists: bundle with this venv as the prefix.
    bundle = make(store, device, tmp_path, prefix=str(VENV))
    unit = next(bundle.glob("*.service"))
    done = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0 and done.stderr == "", done.stderr


def test_default_unit_fails_verify_only_for_the_missing_binary(
    store: SiteSecrets, tmp_path: Path
) -> None:
    # The honest other half: with /opt/mpp/venv (created by firstboot.sh on the Pi) the one
    # complaint here is that the binary is not installed on this machine.
    unit = make(store, "caller-03", tmp_path) / "mpp-caller.service"
    done = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, check=False
    )
    assert done.returncode != 0
    assert done.stderr.strip().splitlines() == [
        "mpp-caller.service: Command /opt/mpp/venv/bin/mpp is not executable: "
        "No such file or directory"
    ]


def test_udev_rule_matches_the_printer(store: SiteSecrets, tmp_path: Path) -> None:
    rule = (make(store, "kiosk-3", tmp_path) / "60-mpp-printer.rules").read_text()
    line = next(x for x in rule.splitlines() if not x.startswith("#"))
    assert 'ATTR{idVendor}=="0416"' in line and 'ATTR{idProduct}=="5011"' in line
    assert 'SUBSYSTEM=="usb"' in line and 'GROUP="lp"' in line and 'MODE="0660"' in line
    assert "lp" in (tmp_path / "kiosk-3" / "mpp-kiosk.service").read_text()


def test_archive_and_rebundle(store: SiteSecrets, tmp_path: Path) -> None:
    archive = write_bundle(
        Inventory.parse(example_text(), str(EXAMPLE)), store, "kiosk-1", out_dir=tmp_path,
        options=BundleOptions(), archive=True,
    )  # fmt: skip
    with tarfile.open(archive) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert set(members) == {f"kiosk-1/{name}" for name in EXPECTED["kiosk-1"]}
    assert members["kiosk-1/broker-password"].mode == 0o600
    assert members["kiosk-1/firstboot.sh"].mode == 0o755
    # Re-bundling leaves nothing behind from an earlier bundle.
    bundle = make(store, "kiosk-1", tmp_path)
    (bundle / "stale.txt").write_text("old")
    assert {p.name for p in make(store, "kiosk-1", tmp_path).iterdir()} == EXPECTED["kiosk-1"]


def test_wheelhouse_goes_along(store: SiteSecrets, tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    (wheels / "mpp_antrian-0.1.0-py3-none-any.whl").write_bytes(b"PK")
    bundle = make(store, "tv-lobby-1", tmp_path / "out", wheelhouse=wheels)
    assert [p.name for p in (bundle / "wheels").iterdir()] == ["mpp_antrian-0.1.0-py3-none-any.whl"]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(Exception, match=r"no \.whl files"):
        make(store, "tv-lobby-1", tmp_path / "out", wheelhouse=empty)


def test_cli_bundles_all_and_refuses_unknown(store: SiteSecrets, tmp_path: Path) -> None:
    base = ["--site", str(EXAMPLE), "--secrets", str(store.root)]
    result = CliRunner().invoke(main, [*base, "bundle", "--all", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert len([p for p in tmp_path.iterdir() if p.is_dir()]) == 41  # 40 devices and the hub
    result = CliRunner().invoke(main, [*base, "bundle", "caller-99"])
    assert result.exit_code == 1
    assert "devices.caller-99: no such device in the inventory" in result.output
    result = CliRunner().invoke(main, [*base, "bundle"])
    assert result.exit_code == 2 and "name one DEVICE, or pass --all" in result.output


def test_bundle_all_skips_a_revoked_device_with_a_warning(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets"
    base = ["--site", str(EXAMPLE), "--secrets", str(secrets)]
    runner = CliRunner()
    assert runner.invoke(main, [*base, "init", "--server", "mpp.local"]).exit_code == 0
    assert runner.invoke(main, [*base, "revoke", "caller-05"]).exit_code == 0
    result = runner.invoke(main, [*base, "bundle", "--all", "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "warning: caller-05: skipped, its broker account is revoked" in result.output
    made = {p.name for p in (tmp_path / "out").iterdir()}
    assert len(made) == 40 and "caller-05" not in made and "caller-06" in made
    alone = runner.invoke(main, [*base, "bundle", "caller-05", "--out", str(tmp_path / "out")])
    assert alone.exit_code == 1 and "rotate caller-05" in alone.output


FAKE = """#!/bin/bash
echo "$(basename "$0") $*" >> "$FAKE_LOG"
case "$(basename "$0")" in
  getent) exit 2 ;;
  python3)
    if [ "$1" = "-m" ] && [ "$2" = "venv" ]; then
      mkdir -p "${@: -1}/bin" && ln -sf "$0" "${@: -1}/bin/python"
    fi ;;
esac
exit 0
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="firstboot.sh installs files owned by root")
@pytest.mark.parametrize("device", ["kiosk-1", "caller-03", "tv-lobby-1"])
def test_firstboot_installs_the_bundle(store: SiteSecrets, tmp_path: Path, device: str) -> None:
    bundle = make(store, device, tmp_path / "boot")
    password = (bundle / "broker-password").read_text()
    assert subprocess.run(["bash", "-n", str(bundle / "firstboot.sh")], check=False).returncode == 0
    fakes = tmp_path / "fakes"
    fakes.mkdir()
    for name in ("apt-get", "systemctl", "useradd", "groupadd", "usermod", "getent",
                 "udevadm", "raspi-config", "python3"):  # fmt: skip
        (fakes / name).write_text(FAKE)
        (fakes / name).chmod(0o755)
    root, log = tmp_path / "root", tmp_path / "calls.log"
    env = {"PATH": f"{fakes}:/usr/bin:/bin", "MPP_ROOT": str(root), "FAKE_LOG": str(log)}
    done = subprocess.run(
        ["bash", str(bundle / "firstboot.sh")], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    role = parse_site(example_text()).devices[device].role
    etc = root / "etc" / "mpp"
    assert (etc / "site.toml").read_bytes() == (bundle / "site.toml").read_bytes()
    assert (etc / "broker-password").read_text() == password
    assert stat.S_IMODE((etc / "broker-password").stat().st_mode) == 0o600
    assert not (bundle / "broker-password").exists()  # gone from the boot partition
    unit = root / "etc" / "systemd" / "system" / f"mpp-{role}.service"
    assert unit.read_bytes() == (bundle / f"mpp-{role}.service").read_bytes()
    calls = log.read_text().splitlines()
    assert f"systemctl enable mpp-{role}.service" in calls
    assert any(
        c.startswith("apt-get install -y --no-install-recommends python3-venv") for c in calls
    )
    assert any(c.startswith("python3 -m venv --system-site-packages") for c in calls)
    assert "python -m pip install mpp-antrian[pi]==0.1.0" in calls
    rules = root / "etc" / "udev" / "rules.d" / "60-mpp-printer.rules"
    assert rules.exists() == (device == "kiosk-1")
    assert ("raspi-config nonint do_i2c 0" in calls) == (device == "caller-03")
    assert (root / "var" / "lib" / "mpp" / "firstboot-done").exists()
    # Run again (a technician re-runs it): the installed password stays, nothing fails.
    again = subprocess.run(
        ["bash", str(bundle / "firstboot.sh")], env=env, capture_output=True, text=True, check=False
    )
    assert again.returncode == 0, again.stderr
    assert (etc / "broker-password").read_text() == password


def test_firstboot_passes_shell_syntax_for_every_role(store: SiteSecrets, tmp_path: Path) -> None:
    for device in EXPECTED:
        script = make(store, device, tmp_path) / "firstboot.sh"
        assert subprocess.run(["bash", "-n", str(script)], check=False).returncode == 0, device


@pytest.mark.parametrize("role", ["kiosk", "caller", "display", "hub"])
def test_exec_start_is_accepted_by_the_mpp_command(role: str, tmp_path: Path) -> None:
    """The unit starts each part with options its `mpp` subcommand really has."""
    import click

    from protocol.cli import main as mpp
    from protocol.systemd import BROKER_PASSWORD_CREDENTIAL

    (tmp_path / BROKER_PASSWORD_CREDENTIAL).write_text("pw\n")  # what LoadCredential provides
    args = [a.replace("%d", str(tmp_path)) for a in service_args(role, f"{role}-1")]
    assert args[0] == role
    command = mpp.get_command(click.Context(mpp), role)
    assert command is not None, f"`mpp {role}` does not exist"
    rest = args[1:]
    while isinstance(command, click.Group):  # e.g. `mpp kiosk run`
        command = command.get_command(click.Context(command), rest[0])
        assert command is not None, f"`mpp {role} {rest[0]}` does not exist"
        rest = rest[1:]
    command.make_context(role, rest)  # raises on an unknown or missing option
