"""A device bundle: everything one machine needs, in one directory (or .tar.gz archive).

    caller-03/
      manifest.json          what is here (sha256 of each file), device, role, site version
      site.toml              the inventory slice (this device only) with the broker address
      ca.crt                 the site CA: the device trusts no other broker
      broker-password        its own broker password (mode 0600)
      mpp-caller.service     systemd unit: Type=notify, watchdog, Restart=always, start limits
      firstboot.sh           installs the package, the files and the unit; starts the service
      60-mpp-printer.rules   kiosks with a USB printer only: udev rule for the printer
      requirements-py3.13-aarch64.txt   the role's wheels pinned by hash, one file per target
      wheels/                those wheels, our own package's among them: first boot is offline

No other device's password and no private key of the site are ever in a bundle.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import tarfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path, PurePosixPath
from string import Template

import protocol
from broker_config.uplink import CONF as UPLINK_CONF
from broker_config.uplink import UplinkLayout
from hub.store import FIRST_START_SUFFIX
from protocol.site import CallerDevice, DisplayDevice, KioskDevice, Site, parse_site
from protocol.systemd import BROKER_PASSWORD_CREDENTIAL
from provisioning.apply import record_bundle
from provisioning.inventory import (
    DEVICE_DIR,
    BrokerAddress,
    Inventory,
    ProvisioningError,
    device_slice,
)
from provisioning.site_broker import current_layout, uplink_settings
from provisioning.site_secrets import CA_CERT, SiteSecrets
from provisioning.wheelhouse import ROLE_EXTRAS, Software, Target, Wheelhouse, default_targets

MANIFEST = "manifest.json"
SITE_FILE = "site.toml"
PASSWORD_FILE = "broker-password"
FIRSTBOOT = "firstboot.sh"
PRINTER_RULES = "60-mpp-printer.rules"
SERVICE_USER = "mpp"
STATE_DIR = "/var/lib/mpp"  # the service's working directory (StateDirectory=mpp)
ROLE_TITLES = {
    "kiosk": "kiosk",
    "caller": "caller box",
    "display": "display",
    "hub": "hub",
    "web": "web app",
}
ROLE_GROUPS = {
    "kiosk": ("gpio", "lp", "dialout", "video", "render", "input"),
    "caller": ("gpio", "i2c"),
    "display": ("video", "render", "audio", "input"),
    "hub": (),
    "web": (),
}
# What each role's sandbox lets through beyond the common part of the unit: the device nodes
# it drives (DevicePolicy=closed: nothing else), its socket families, and what Python's own
# libraries need (ctypes callbacks write code at run time: no MemoryDenyWriteExecute where
# pyttsx3 drives espeak-ng or SDL draws).
ROLE_SANDBOX = {
    "kiosk": (
        "DevicePolicy=closed",
        "ProtectClock=yes",
        "DeviceAllow=char-gpiochip rw",  # buttons, LEDs, buzzer (lgpio)
        "DeviceAllow=char-usb_device rw",  # a USB printer (libusb)
        "DeviceAllow=char-ttyUSB rw",  # serial printers
        "DeviceAllow=char-ttyACM rw",
        "DeviceAllow=char-ttyS rw",
        "DeviceAllow=char-ttyAMA rw",  # the Pi's own UART
        "DeviceAllow=char-drm rw",  # the touchscreen: video (kmsdrm) and touch input
        "DeviceAllow=char-fb rw",
        "DeviceAllow=char-input r",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK",  # libusb: udev events
    ),
    "caller": (
        "DevicePolicy=closed",
        "ProtectClock=yes",
        "DeviceAllow=char-gpiochip rw",
        "DeviceAllow=char-i2c rw",  # the LCD's backpack
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
        "MemoryDenyWriteExecute=yes",
    ),
    "display": (
        "DevicePolicy=closed",
        "ProtectClock=yes",
        "DeviceAllow=char-drm rw",
        "DeviceAllow=char-fb rw",
        "DeviceAllow=char-alsa rw",  # the speaker
        "DeviceAllow=char-input r",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK",  # SDL: udev events
    ),
    # The web process serves http/https on the LAN; greenlets switch stacks, no JIT, but no
    # MemoryDenyWriteExecute= (gevent's C core is not checked under it here).
    "web": (
        "PrivateDevices=yes",
        "ProtectClock=yes",
        "ProcSubset=pid",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
    ),
    "hub": (
        # The hub reads (never sets) the kernel's NTP state with adjtimex (hub/clock.py), which
        # ProtectClock= would forbid.
        "SystemCallFilter=adjtimex",
        "PrivateDevices=yes",
        "ProcSubset=pid",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
        "MemoryDenyWriteExecute=yes",
    ),
}

# Debian packages a role's machine needs; first boot installs only those the image lacks.
# The python3-* among them are linked into the venv (nothing else of the system's Python is
# visible there): the index has no lgpio wheel for Trixie's Python 3.13, and Debian's pygame
# uses the system SDL with the console (kmsdrm) driver.
ROLE_PACKAGES = {
    "kiosk": ("python3-lgpio", "python3-evdev", "libusb-1.0-0", "fonts-dejavu-core"),
    "caller": ("python3-lgpio",),
    "display": ("python3-pygame", "espeak-ng", "fonts-dejavu-core"),
    "hub": (),
}
REQUIREMENTS_GLOB = "requirements-py*.txt"


@dataclass(frozen=True)
class BundleOptions:
    """How the software is installed on the device, and how systemd watches it.

    By default the bundle carries the role's wheels and hash-pinned requirements (`software`
    resolves them) and first boot never reaches a package index; `pip_index` opts into an
    online install from that index instead.
    """

    prefix: str = "/opt/mpp/venv"
    software: Software | None = None
    targets: tuple[Target, ...] | None = None  # default: wheelhouse.default_targets(role)
    pip_index: str | None = None
    watchdog_s: int = 30
    start_limit_interval_s: int = 600
    start_limit_burst: int = 20

    def __post_init__(self) -> None:
        if not self.prefix.startswith("/") or any(c.isspace() for c in self.prefix):
            raise ProvisioningError(f"--prefix {self.prefix!r}: an absolute path without spaces")
        if not 5 <= self.watchdog_s <= 600:
            raise ProvisioningError("--watchdog: between 5 and 600 seconds")
        if (self.software is None) == (self.pip_index is None):
            raise ProvisioningError(
                "a bundle installs either from its own wheels (the default) or, when asked "
                "with --pip-index, from a package index; not both, not neither"
            )

    def wheelhouse(self, role: str) -> Wheelhouse | None:
        """The role's wheels and requirements files (None for an online install)."""
        if self.software is None:
            return None
        return self.software.for_role(role, self.targets or default_targets(role))


def _template(name: str) -> Template:
    return Template(resources.files("provisioning").joinpath(name).read_text(encoding="utf-8"))


def role_of(site: Site, device: str) -> str:
    """The role of `device` ('hub' for the hub itself)."""
    if device == "hub":
        return "hub"
    if device not in site.devices:
        raise ProvisioningError(
            f"devices.{device}: no such device in the inventory; "
            f"known: {', '.join(site.devices) or 'none'}"
        )
    return site.devices[device].role


def service_name(role: str) -> str:
    """The systemd unit a machine of `role` runs."""
    return f"mpp-{role}.service"


# How each part's `mpp` subcommand is started under systemd (their options, as they are).
# `%d` is systemd's credentials directory, where LoadCredential= puts the broker password.
ROLE_COMMANDS = {
    "kiosk": "kiosk run --site {site} --device {device}",
    "caller": "caller --site {site} --device {device}",
    "display": "display --site {site} --device {device} --password-file %d/{credential}",
    "hub": "hub --site {site}",
    "web": "web --site {site}",
}
# The site server's second service: the web app, its own process with its own broker account
# and its https certificate from the site CA (in the hub's bundle).
WEB = "web"
WEB_PASSWORD_FILE = "web-broker-password"
WEB_TLS_DIR = f"{DEVICE_DIR}/web"
WEB_CERT_FILE, WEB_KEY_FILE = "web.crt", "web.key"


def service_args(role: str, device: str) -> list[str]:
    """The `mpp` arguments in the unit's ExecStart for a machine of `role`."""
    return (
        ROLE_COMMANDS[role]
        .format(
            site=f"{DEVICE_DIR}/{SITE_FILE}", device=device, credential=BROKER_PASSWORD_CREDENTIAL
        )
        .split()
    )


def render_unit(site: Site, device: str, options: BundleOptions) -> str:
    """The systemd unit of one device, of the hub, or of the web process ("web")."""
    role = WEB if device == WEB else role_of(site, device)
    return _template("mpp-device.service.tmpl").substitute(
        password_file=WEB_PASSWORD_FILE if role == WEB else PASSWORD_FILE,
        role=role,
        role_title=ROLE_TITLES[role],
        device=device,
        site_id=site.site.id,
        site_name=site.site.name,
        prefix=options.prefix,
        args=" ".join(service_args(role, device)),
        # `mpp-provision apply` reloads the hub's inventory; the devices have no reload.
        reload="ExecReload=/bin/kill -HUP $MAINPID\n" if role == "hub" else "",
        sandbox="".join(f"{line}\n" for line in ROLE_SANDBOX[role]),
        watchdog=options.watchdog_s,
        start_limit_interval=options.start_limit_interval_s,
        start_limit_burst=options.start_limit_burst,
        user=SERVICE_USER,
        groups=" ".join(ROLE_GROUPS[role]),
        device_dir=DEVICE_DIR,
        credential=BROKER_PASSWORD_CREDENTIAL,
    )


UPLINK_SERVICE = "mpp-uplink.service"


def render_uplink_unit(site: Site, uplink: UplinkLayout, options: BundleOptions) -> str:
    """The site server's unit for `mpp uplink`, the uplink broker and its watchdog."""
    return _template("mpp-uplink.service.tmpl").substitute(
        site_id=site.site.id,
        site_name=site.site.name,
        config=f"{uplink.etc_dir.rstrip('/')}/{UPLINK_CONF}",
        prefix=options.prefix,
        # Its probes catch a hang within about 12 s; systemd only catches `mpp uplink` itself.
        watchdog=max(60, options.watchdog_s),
        start_limit_interval=options.start_limit_interval_s,
        start_limit_burst=options.start_limit_burst,
    )


def _uplink_steps() -> str:
    """On the site server: the uplink broker's service when the bundle has one (the site is
    bridged to a region); its configuration the technician installs from `broker --bridge`."""
    return f"""
if [ -f "$BUNDLE/{UPLINK_SERVICE}" ]; then
    log "uplink broker (the bridge to the region): {UPLINK_SERVICE}"
    install -m 0644 "$BUNDLE/{UPLINK_SERVICE}" "$ROOT/etc/systemd/system/{UPLINK_SERVICE}"
    systemctl daemon-reload
    systemctl enable {UPLINK_SERVICE}
    systemctl restart --no-block {UPLINK_SERVICE}
fi
"""


def usb_printer(site: Site, device: str) -> tuple[str, str, str] | None:
    """(vendor, product, profile) in udev's 4-digit hex when `device` prints over USB."""
    spec = site.devices.get(device)
    if not isinstance(spec, KioskDevice) or spec.printer is None:
        return None
    printer = spec.printer
    if printer.connection != "usb" or printer.vendor_id is None or printer.product_id is None:
        return None
    return f"{printer.vendor_id:04x}", f"{printer.product_id:04x}", printer.profile


def render_udev_rule(site: Site, device: str) -> str | None:
    """The udev rule for a kiosk's USB printer, or None when it has none."""
    found = usb_printer(site, device)
    if found is None:
        return None
    vendor, product, profile = found
    return _template("printer.rules.tmpl").substitute(
        device=device, vendor=vendor, product=product, profile=profile
    )


def first_start_steps(site: Site) -> str:
    """The hub's first-boot lines that allow its first start: the hub refuses a missing or
    empty database (an unmounted disk must not become a new queue numbered from 001), unless
    this file beside it says so; written only while there is no database."""
    database = PurePosixPath(STATE_DIR) / site.hub.database
    return f"""
log "hub database {database}"
install -d -m 0755 "$ROOT{database.parent}"
if [ ! -s "$ROOT{database}" ]; then
    date -u +%Y-%m-%dT%H:%M:%SZ > "$ROOT{database}{FIRST_START_SUFFIX}"
fi
"""


def _hardware_steps(site: Site, device: str) -> str:
    steps = first_start_steps(site) if device == "hub" else ""
    if usb_printer(site, device) is not None:
        steps += f"""
log "USB printer"
install -d -m 0755 "$ROOT/etc/udev/rules.d" "$ROOT/etc/modprobe.d"
install -m 0644 "$BUNDLE/{PRINTER_RULES}" "$ROOT/etc/udev/rules.d/{PRINTER_RULES}"
# The usblp driver would claim the printer before libusb (python-escpos) can.
echo "blacklist usblp" > "$ROOT/etc/modprobe.d/mpp-no-usblp.conf"
udevadm control --reload-rules
udevadm trigger --subsystem-match=usb
"""
    spec = site.devices.get(device)
    if isinstance(spec, CallerDevice) and spec.lcd is not None:
        steps += """
log "I2C for the character display"
if command -v raspi-config >/dev/null; then raspi-config nonint do_i2c 0; fi
"""
    return steps


def device_packages(site: Site, device: str) -> list[str]:
    """The Debian packages `device` needs (its role's, and pygame for a touchscreen kiosk)."""
    packages = list(ROLE_PACKAGES[role_of(site, device)])
    spec = site.devices.get(device)
    if isinstance(spec, KioskDevice) and spec.screen is not None:
        packages.append("python3-pygame")
    return packages


def _install_software(role: str, system_python: list[str], options: BundleOptions) -> str:
    link = ""
    if system_python:
        link = _template("link-system.sh.tmpl").substitute(packages=" ".join(system_python))
    if options.pip_index is None:
        return _template("install-wheels.sh.tmpl").substitute(link_system=link)
    return _template("install-index.sh.tmpl").substitute(
        link_system=link,
        index=options.pip_index,
        spec=f"mpp-antrian[{','.join(ROLE_EXTRAS[role])}]=={protocol.__version__}",
    )


def render_firstboot(site: Site, device: str, options: BundleOptions) -> str:
    """The first-boot script of one device."""
    role = role_of(site, device)
    packages = device_packages(site, device)
    groups = ROLE_GROUPS[role]
    system_python = [p for p in packages if p.startswith("python3-")]
    return _template("firstboot.sh.tmpl").substitute(
        role=role,
        device=device,
        site_id=site.site.id,
        prefix=options.prefix,
        service=service_name(role),
        user=SERVICE_USER,
        groups=" ".join(groups) if groups else "",
        groups_csv=",".join(groups),
        apt_packages=" ".join(packages),
        install_software=_install_software(role, system_python, options),
        device_dir=DEVICE_DIR,
        hardware=_hardware_steps(site, device),
        web=_web_steps() + _uplink_steps() if role == "hub" else "",
        web_secrets=_web_secrets() if role == "hub" else "",
        secret_files=(
            f' "$BUNDLE/{WEB_PASSWORD_FILE}" "$BUNDLE/{WEB_KEY_FILE}"' if role == "hub" else ""
        ),
    )


def _web_secrets() -> str:
    """On the site server: the web process's broker password and TLS key leave the card first."""
    return f"""
log "web app: broker password and https key into {DEVICE_DIR}"
if [ -f "$BUNDLE/{WEB_PASSWORD_FILE}" ]; then
    install -m 0600 -o root -g root "$BUNDLE/{WEB_PASSWORD_FILE}" \\
        "$ROOT{DEVICE_DIR}/{WEB_PASSWORD_FILE}"
    rm -f "$BUNDLE/{WEB_PASSWORD_FILE}"
fi
install -d -m 0700 -o root -g root "$ROOT{WEB_TLS_DIR}"
if [ -f "$BUNDLE/{WEB_KEY_FILE}" ]; then
    install -m 0600 -o root -g root "$BUNDLE/{WEB_KEY_FILE}" "$ROOT{WEB_TLS_DIR}/{WEB_KEY_FILE}"
    rm -f "$BUNDLE/{WEB_KEY_FILE}"
fi
"""


def _web_steps() -> str:
    """On the site server: the web process's certificate (its key readable by the service
    user's group) and its service."""
    return f"""
log "web app: https certificate and {service_name(WEB)}"
install -m 0644 "$BUNDLE/{WEB_CERT_FILE}" "$ROOT{WEB_TLS_DIR}/{WEB_CERT_FILE}"
chgrp {SERVICE_USER} "$ROOT{WEB_TLS_DIR}" "$ROOT{WEB_TLS_DIR}/{WEB_KEY_FILE}"
chmod 0750 "$ROOT{WEB_TLS_DIR}"
chmod 0640 "$ROOT{WEB_TLS_DIR}/{WEB_KEY_FILE}"
install -m 0644 "$BUNDLE/{service_name(WEB)}" "$ROOT/etc/systemd/system/{service_name(WEB)}"
systemctl daemon-reload
systemctl enable {service_name(WEB)}
systemctl restart --no-block {service_name(WEB)}
"""


def broker_address_for(device: str, store: SiteSecrets, site: Site) -> BrokerAddress:
    """Devices reach the TLS listener by the server's name; the hub uses loopback."""
    layout = current_layout(site, store)
    if device == "hub":
        return BrokerAddress("127.0.0.1", port=layout.loopback_port, tls=False, ca_file=None)
    return BrokerAddress(store.servers[0], port=layout.device_port, tls=True)


def device_site_toml(inventory: Inventory, store: SiteSecrets, device: str) -> str:
    """The inventory slice `device` runs (its bundle's site.toml); the site server's also
    names the web process's https certificate and key files."""
    site = inventory.site
    web_tls = (f"{WEB_TLS_DIR}/{WEB_CERT_FILE}", f"{WEB_TLS_DIR}/{WEB_KEY_FILE}")
    return device_slice(
        inventory,
        device,
        broker_address_for(device, store, site),
        web_tls=web_tls if role_of(site, device) == "hub" else None,
    )


def slice_version(inventory: Inventory, store: SiteSecrets, device: str) -> str:
    """The inventory version `device` reports when it runs its slice of `inventory`."""
    return parse_site(device_site_toml(inventory, store, device), device).version


def bundle_files(
    inventory: Inventory, store: SiteSecrets, device: str, options: BundleOptions
) -> dict[str, bytes]:
    """Every file of one device's bundle, by name (wheels aside)."""
    site = inventory.site
    store.check_site(site)
    role = role_of(site, device)
    files: dict[str, bytes] = {
        SITE_FILE: device_site_toml(inventory, store, device).encode(),
        CA_CERT: store.ca.cert_pem,
        PASSWORD_FILE: (store.password(device) + "\n").encode(),
        service_name(role): render_unit(site, device, options).encode(),
        FIRSTBOOT: render_firstboot(site, device, options).encode(),
    }
    rule = render_udev_rule(site, device)
    if rule is not None:
        files[PRINTER_RULES] = rule.encode()
    if role == "hub":  # the site server also runs the web process
        web_tls = store.web_tls
        files |= {
            WEB_PASSWORD_FILE: (store.password(WEB) + "\n").encode(),
            service_name(WEB): render_unit(site, WEB, options).encode(),
            WEB_CERT_FILE: web_tls.cert_pem,
            WEB_KEY_FILE: web_tls.key_pem,
        }
        uplink = uplink_settings(store)
        if uplink is not None:  # the site is bridged to a region: the uplink broker's service
            files[UPLINK_SERVICE] = render_uplink_unit(site, uplink, options).encode()
    house = options.wheelhouse(role)
    if house is not None:
        files |= {name: text.encode() for name, text in house.requirements.items()}
    manifest = {
        "device": device,
        "role": role,
        "site": site.site.id,
        "inventory_version": site.version,
        "software": f"mpp-antrian {protocol.__version__}",
        "extras": list(ROLE_EXTRAS[role]),
        "install": "offline wheels" if house is not None else f"index {options.pip_index}",
        "service": service_name(role),
        "files": {name: hashlib.sha256(data).hexdigest() for name, data in sorted(files.items())},
    }
    files[MANIFEST] = (json.dumps(manifest, indent=2) + "\n").encode()
    return files


MODES = {PASSWORD_FILE: 0o600, WEB_PASSWORD_FILE: 0o600, WEB_KEY_FILE: 0o600, FIRSTBOOT: 0o755}


def write_bundle(
    inventory: Inventory,
    store: SiteSecrets,
    device: str,
    *,
    out_dir: Path,
    options: BundleOptions,
    archive: bool = False,
    name: str | None = None,
) -> Path:
    """Write the bundle of `device` under `out_dir` (a directory, or DEVICE.tar.gz).

    `name` is the directory's name (default: the device id).
    """
    files = bundle_files(inventory, store, device, options)
    if device != "hub":  # `apply` installs the hub's inventory itself
        record_bundle(store, device, files[SITE_FILE].decode(), store.password(device))
    house = options.wheelhouse(role_of(inventory.site, device))
    wheels = house.wheels if house is not None else []
    out_dir.mkdir(parents=True, exist_ok=True)
    if archive:
        path = out_dir / f"{device}.tar.gz"
        with tarfile.open(path, "w:gz") as tar:
            for file_name, data in sorted(files.items()):
                info = tarfile.TarInfo(f"{device}/{file_name}")
                info.size, info.mode = len(data), MODES.get(file_name, 0o644)
                tar.addfile(info, io.BytesIO(data))
            for wheel in wheels:
                tar.add(wheel, arcname=f"{device}/wheels/{wheel.name}")
        path.chmod(0o600)
        return path
    target = out_dir / (name or device)
    if target.exists():
        shutil.rmtree(target)  # a bundle holds exactly its files: nothing left from before
    target.mkdir(mode=0o700)
    for file_name, data in files.items():
        (target / file_name).write_bytes(data)
        # A FAT boot partition has no modes: firstboot.sh runs as `bash firstboot.sh`.
        with contextlib.suppress(PermissionError):
            (target / file_name).chmod(MODES.get(file_name, 0o644))
    if wheels:
        (target / "wheels").mkdir()
        for wheel in wheels:
            _link_or_copy(wheel, target / "wheels" / wheel.name)
    return target


def _link_or_copy(source: Path, target: Path) -> None:
    """A hard link where the file system allows it (41 bundles share one pool), else a copy."""
    try:
        os.link(source, target)
    except OSError:  # another file system, or FAT (a boot partition)
        shutil.copyfile(source, target)


def device_kinds(site: Site) -> dict[str, str]:
    """Every machine that gets a bundle: the hub and each inventory device, with its role."""
    return {"hub": "hub"} | {
        d: dev.role
        for d, dev in site.devices.items()
        if isinstance(dev, KioskDevice | CallerDevice | DisplayDevice)
    }
