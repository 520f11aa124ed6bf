"""First-boot files on a Pi boot partition: cloud-init accepts them, they carry the bundle."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from provisioning.boot import BootOptions, wifi_psk
from provisioning.cli import main
from provisioning.inventory import ProvisioningError
from provisioning.wheelhouse import Software
from tests.conftest import EXAMPLE

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHk3kJm0b7yP8Qm1u5a1R2m2y0o9Xq8Lh3tV9bS6cQ0d teknisi@laptop"
SYSTEM_PYTHON = "/usr/bin/python3"  # Debian's cloud-init lives in the system Python


@pytest.fixture(scope="module")
def secrets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("boot") / "secrets"
    result = CliRunner().invoke(
        main, ["--site", str(EXAMPLE), "--secrets", str(path), "init", "--server", "mpp.local"]
    )
    assert result.exit_code == 0, result.output
    return path


@pytest.fixture
def boot(tmp_path: Path) -> Path:
    """A stand-in for a mounted Raspberry Pi OS boot partition."""
    path = tmp_path / "bootfs"
    path.mkdir()
    (path / "config.txt").write_text("[all]\n")
    (path / "cmdline.txt").write_text("console=tty1 root=PARTUUID=x rootwait\n")
    return path


WHEELS: list[str] = []  # the session's package wheel and wheel cache (fixture below)


@pytest.fixture(autouse=True)
def _wheels(software: Software) -> None:
    WHEELS[:] = [
        "--package-wheel",
        str(software.package),
        "--wheel-cache",
        str(software.pool.parent),
    ]


def write_boot(secrets: Path, boot: Path, tmp_path: Path, *extra: str, env=None) -> Result:
    key = tmp_path / "id_ed25519.pub"
    key.write_text(f"# the technician\n{KEY}\n")
    return CliRunner().invoke(
        main,
        ["--site", str(EXAMPLE), "--secrets", str(secrets), "write-boot", "caller-03", str(boot),
         "--ssh-key", str(key), *WHEELS, *extra],
        env=env,
    )  # fmt: skip


def cloud_config_keys() -> set[str]:
    """Every top-level key the installed cloud-init's schema knows."""
    code = (
        "import json; from cloudinit.config.schema import get_schema; s = get_schema();"
        "keys = set(s.get('properties', {}));"
        "[keys.update(d.get('properties', {})) for d in s['$defs'].values()];"
        "print(json.dumps(sorted(keys)))"
    )
    out = subprocess.run([SYSTEM_PYTHON, "-c", code], capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout))


def test_user_data_passes_cloud_init_schema(secrets: Path, boot: Path, tmp_path: Path) -> None:
    result = write_boot(secrets, boot, tmp_path)
    assert result.exit_code == 0, result.output
    done = subprocess.run(
        ["cloud-init", "schema", "--config-file", str(boot / "user-data")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Valid cloud-config" in done.stdout
    # The schema lets unknown keys pass: check each of ours is known (enable_ssh belongs to
    # Raspberry Pi OS's own cloud-init module, which Debian's cloud-init does not ship).
    data = yaml.safe_load((boot / "user-data").read_text())
    assert set(data) - cloud_config_keys() == {"enable_ssh"}
    assert (boot / "user-data").read_text().startswith("#cloud-config\n")


def test_schema_check_is_not_a_formality(tmp_path: Path) -> None:
    bad = tmp_path / "user-data"
    bad.write_text("#cloud-config\nusers:\n  - name: x\n    lock_passwd: maybe\n")
    done = subprocess.run(
        ["cloud-init", "schema", "--config-file", str(bad)], capture_output=True, check=False
    )
    assert done.returncode != 0


def test_user_data_contents(secrets: Path, boot: Path, tmp_path: Path) -> None:
    assert write_boot(secrets, boot, tmp_path, "--user", "budi").exit_code == 0
    data = yaml.safe_load((boot / "user-data").read_text())
    assert data["hostname"] == "caller-03" and data["timezone"] == "Asia/Makassar"
    (user,) = data["users"]
    assert user["name"] == "budi" and user["ssh_authorized_keys"] == [KEY]
    assert user["lock_passwd"] is True and data["ssh_pwauth"] is False
    assert data["runcmd"][-1] == ["bash", "/boot/firmware/mpp/firstboot.sh"]
    bundle = boot / "mpp"
    assert (bundle / "firstboot.sh").exists() and (bundle / "mpp-caller.service").exists()
    assert json.loads((bundle / "manifest.json").read_text())["device"] == "caller-03"
    meta = yaml.safe_load((boot / "meta-data").read_text())
    assert meta["local-hostname"] == "caller-03"
    assert meta["instance-id"].startswith("mpp-mpp-banjarbaru-caller-03-")


def test_network_config_parses_and_carries_wifi(secrets: Path, boot: Path, tmp_path: Path) -> None:
    result = write_boot(
        secrets, boot, tmp_path, "--wifi-ssid", "MPP-Perangkat",
        env={"MPP_WIFI_PASSWORD": "rahasia-sekali"},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    network = yaml.safe_load((boot / "network-config").read_text())["network"]
    wifi = network["wifis"]["wlan0"]
    assert wifi["regulatory-domain"] == "ID"
    psk = wifi["access-points"]["MPP-Perangkat"]["password"]
    assert psk == wifi_psk("MPP-Perangkat", "rahasia-sekali") and len(psk) == 64
    assert "rahasia-sekali" not in (boot / "network-config").read_text()
    # cloud-init's own parser accepts it (22.4 has no network-config schema command).
    code = (
        "import sys, yaml; from cloudinit.net.network_state import parse_net_config_data;"
        "s = parse_net_config_data(yaml.safe_load(open(sys.argv[1]))['network']);"
        "print(sorted(i['name'] for i in s.iter_interfaces()))"
    )
    out = subprocess.run(
        [SYSTEM_PYTHON, "-c", code, str(boot / "network-config")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "eth0" in out.stdout


def test_the_card_carries_pinned_wheels_for_trixie_and_bookworm(
    secrets: Path, boot: Path, tmp_path: Path
) -> None:
    assert write_boot(secrets, boot, tmp_path).exit_code == 0
    bundle = boot / "mpp"
    for python in ("3.13", "3.11"):
        text = (bundle / f"requirements-py{python}-aarch64.txt").read_text()
        assert "mpp_antrian==0.1.0 --hash=sha256:" in text and "gpiozero==" in text
        core = f"pydantic_core-*-cp{python.replace('.', '')}-*aarch64*.whl"
        assert list((bundle / "wheels").glob(core)), core
    every_text = [p.read_text() for p in bundle.iterdir() if p.is_file()]
    every_text.append((boot / "user-data").read_text())
    assert not [t for t in every_text if "index-url" in t or "pypi" in t.lower()]


def test_wifi_psk_matches_the_standard_test_vector() -> None:
    # IEEE 802.11i-2004, H.4.1: passphrase "password", SSID "IEEE".
    assert wifi_psk("IEEE", "password") == (
        "f42c6fc52df0ebef9ebb4b90b38a5f902e83fe1b135a70e23aed762e9710a12e"
    )


def test_new_bundle_new_instance_id(secrets: Path, boot: Path, tmp_path: Path) -> None:
    assert write_boot(secrets, boot, tmp_path).exit_code == 0
    first = (boot / "meta-data").read_text()
    rotated = CliRunner().invoke(
        main, ["--site", str(EXAMPLE), "--secrets", str(secrets), "rotate", "caller-03"]
    )
    assert rotated.exit_code == 0, rotated.output
    assert write_boot(secrets, boot, tmp_path).exit_code == 0
    assert (boot / "meta-data").read_text() != first  # so cloud-init runs again


def test_refusals_name_the_fix(secrets: Path, boot: Path, tmp_path: Path) -> None:
    not_boot = tmp_path / "home"
    not_boot.mkdir()
    result = write_boot(secrets, not_boot, tmp_path)
    assert result.exit_code == 1 and "not a Raspberry Pi boot partition" in result.output
    assert list(not_boot.iterdir()) == []
    result = write_boot(secrets, boot, tmp_path, "--wifi-ssid", "X", env={"MPP_WIFI_PASSWORD": ""})
    assert result.exit_code == 1 and "MPP_WIFI_PASSWORD" in result.output
    with pytest.raises(ProvisioningError, match="SSH public key"):
        BootOptions(ssh_keys=())
    with pytest.raises(ProvisioningError, match="not an SSH public key line"):
        BootOptions(ssh_keys=("-----BEGIN OPENSSH PRIVATE KEY-----",))
    with pytest.raises(ProvisioningError, match="8 to 63 characters"):
        BootOptions(ssh_keys=(KEY,), wifi_ssid="x", wifi_password="short")
    hub = CliRunner().invoke(
        main,
        ["--site", str(EXAMPLE), "--secrets", str(secrets), "write-boot", "hub", str(boot),
         "--ssh-key", str(tmp_path / "id_ed25519.pub")],
    )  # fmt: skip
    assert hub.exit_code == 1 and "the hub runs on the site server" in hub.output
