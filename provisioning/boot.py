"""First-boot files for a Raspberry Pi OS card (Trixie: cloud-init reads the boot partition).

`write-boot DEVICE BOOT_DIR` writes onto the mounted FAT boot partition:

    user-data        #cloud-config: hostname, time zone, technician account with SSH key,
                     SSH on, then runs mpp/firstboot.sh
    network-config   netplan v2: Ethernet by DHCP; Wi-Fi when configured (PSK, not passphrase)
    meta-data        instance-id (changes with the bundle, so cloud-init runs again) and hostname
    mpp/             the device bundle (firstboot.sh removes the password from the card)

Bookworm images use Imager's firstrun.sh / custom.toml instead: see docs/provisioning.md.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from protocol.site import Site
from provisioning.bundle import FIRSTBOOT, MANIFEST, BundleOptions, role_of, write_bundle
from provisioning.inventory import Inventory, ProvisioningError
from provisioning.site_secrets import SiteSecrets, write_private

BOOT_MOUNT = "/boot/firmware"  # where Raspberry Pi OS (Bookworm, Trixie) mounts the partition
BUNDLE_ON_BOOT = "mpp"
SSH_KEY_RE = re.compile(
    r"^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com|"
    r"sk-ecdsa-sha2-nistp256@openssh\.com) [A-Za-z0-9+/=]+( .*)?$"
)
ADMIN_RE = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
ADMIN_GROUPS = ["adm", "sudo", "gpio", "i2c", "video", "audio", "input", "dialout", "plugdev"]
BOOT_MARKERS = ("config.txt", "cmdline.txt")


@dataclass(frozen=True)
class BootOptions:
    """Who may log in, and how the Pi joins the network."""

    ssh_keys: tuple[str, ...]
    admin_user: str = "teknisi"
    wifi_ssid: str | None = None
    wifi_password: str | None = None
    wifi_country: str = "ID"

    def __post_init__(self) -> None:
        if not self.ssh_keys:
            raise ProvisioningError(
                "give the technician's SSH public key (--ssh-key ~/.ssh/id_ed25519.pub): "
                "without it nobody can log in to the device"
            )
        for key in self.ssh_keys:
            if not SSH_KEY_RE.fullmatch(key):
                raise ProvisioningError(
                    f"{key[:30]!r}... is not an SSH public key line; pass the .pub file"
                )
        if not ADMIN_RE.fullmatch(self.admin_user):
            raise ProvisioningError(f"--user {self.admin_user!r} is not a valid login name")
        if (self.wifi_ssid is None) != (self.wifi_password is None):
            raise ProvisioningError("Wi-Fi needs both --wifi-ssid and a password")
        if self.wifi_password is not None and not 8 <= len(self.wifi_password) <= 63:
            raise ProvisioningError("a WPA2 Wi-Fi password has 8 to 63 characters")
        if not re.fullmatch(r"[A-Z]{2}", self.wifi_country):
            raise ProvisioningError(f"--wifi-country {self.wifi_country!r}: two letters, e.g. ID")


def read_ssh_keys(path: Path) -> tuple[str, ...]:
    """Public key lines of an authorized_keys-style file (comments and blanks skipped)."""
    try:
        lines = path.expanduser().read_text().splitlines()
    except OSError as exc:
        raise ProvisioningError(f"--ssh-key {path}: cannot read it ({exc.strerror})") from None
    return tuple(line.strip() for line in lines if line.strip() and not line.startswith("#"))


def wifi_psk(ssid: str, passphrase: str) -> str:
    """The WPA2 pre-shared key (64 hex digits) derived from a passphrase, as wpa_passphrase does."""
    return hashlib.pbkdf2_hmac("sha1", passphrase.encode(), ssid.encode(), 4096, 32).hex()


def hostname_of(site: Site, device: str) -> str:
    """The device's hostname: its inventory hostname, else its id."""
    spec = site.devices.get(device)
    return (spec.hostname if spec is not None else None) or device


def user_data(site: Site, device: str, options: BootOptions) -> dict[str, Any]:
    """The cloud-config for one device."""
    return {
        "hostname": hostname_of(site, device),
        "manage_etc_hosts": True,
        "timezone": site.site.timezone,
        "users": [
            {
                "name": options.admin_user,
                "gecos": "MPP technician",
                "groups": ADMIN_GROUPS,
                "shell": "/bin/bash",
                "lock_passwd": True,
                "sudo": "ALL=(ALL) NOPASSWD:ALL",
                "ssh_authorized_keys": list(options.ssh_keys),
            }
        ],
        "ssh_pwauth": False,
        "enable_ssh": True,  # Raspberry Pi OS's cloud-init module; runcmd below does it too
        "runcmd": [
            ["systemctl", "enable", "--now", "ssh"],
            ["bash", f"{BOOT_MOUNT}/{BUNDLE_ON_BOOT}/{FIRSTBOOT}"],
        ],
    }


def network_config(options: BootOptions) -> dict[str, Any]:
    """netplan v2 network configuration: Ethernet, plus Wi-Fi when configured."""
    network: dict[str, Any] = {
        "version": 2,
        "ethernets": {"eth0": {"dhcp4": True, "optional": True}},
    }
    if options.wifi_ssid is not None and options.wifi_password is not None:
        network["wifis"] = {
            "wlan0": {
                "dhcp4": True,
                "optional": True,
                "regulatory-domain": options.wifi_country,
                "access-points": {
                    options.wifi_ssid: {
                        "password": wifi_psk(options.wifi_ssid, options.wifi_password)
                    }
                },
            }
        }
    return {"network": network}


def _yaml(data: dict[str, Any]) -> str:
    import yaml  # PyYAML, imported here: only write-boot needs it

    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=False)


def write_boot(
    boot_dir: Path,
    inventory: Inventory,
    store: SiteSecrets,
    device: str,
    *,
    bundle_options: BundleOptions,
    options: BootOptions,
    force: bool = False,
) -> list[Path]:
    """Write cloud-init files and the bundle onto a mounted boot partition."""
    site = inventory.site
    role_of(site, device)
    if device == "hub":
        raise ProvisioningError("the hub runs on the site server, not a Pi; use `bundle hub`")
    if not boot_dir.is_dir():
        raise ProvisioningError(f"{boot_dir} is not a directory; mount the card's boot partition")
    if not force and not any((boot_dir / marker).exists() for marker in BOOT_MARKERS):
        raise ProvisioningError(
            f"{boot_dir} has no config.txt or cmdline.txt, so it is not a Raspberry Pi boot "
            "partition; check the mount point (or pass --force)"
        )
    bundle = write_bundle(
        inventory,
        store,
        device,
        out_dir=boot_dir,
        options=bundle_options,
        name=BUNDLE_ON_BOOT,
    )
    manifest_sha = hashlib.sha256((bundle / MANIFEST).read_bytes()).hexdigest()[:12]
    hostname = hostname_of(site, device)
    files = {
        "user-data": "#cloud-config\n"
        + f"# MPP {device} of {site.site.id}: written by `mpp-provision write-boot`.\n"
        + _yaml(user_data(site, device, options)),
        "network-config": _yaml(network_config(options)),
        "meta-data": _yaml(
            {
                "instance-id": f"mpp-{site.site.id}-{device}-{manifest_sha}",
                "local-hostname": hostname,
            }
        ),
    }
    written = []
    for name, text in files.items():
        write_private(boot_dir / name, text, 0o644)
        written.append(boot_dir / name)
    return [*written, bundle]
