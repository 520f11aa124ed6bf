"""The `mpp-provision` command for technicians: one inventory in, every machine configured.

    mpp-provision check examples/banjarbaru.toml
    mpp-provision --site site.toml init --server mpp-server.local --server 192.168.10.2
    mpp-provision --site site.toml broker                 # files for the site server
    mpp-provision --site site.toml bundle caller-03       # or --all
    mpp-provision --site site.toml write-boot caller-03 /media/$USER/bootfs \
        --ssh-key ~/.ssh/id_ed25519.pub
    mpp-provision --site site.toml replace caller-03 caller-03b
    mpp-provision --site site.toml revoke caller-03
    mpp-provision --site site.toml fleet --watch 5

Exit status: 0 done, 1 a problem (named on stderr), 2 a usage error; `fleet` exits 1 when a
required device is offline and 3 when the broker cannot be reached.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import click

from protocol import __version__
from protocol.errors import InventoryError, MppError
from protocol.site import Site, load_site
from provisioning.inventory import Inventory

DEFAULT_SECRETS = "~/mpp-secrets"
FLEET_UNREACHABLE = 3


@dataclass
class Context:
    """What the group options say: the inventory file and the secrets directory."""

    site_path: Path | None
    secrets: Path | None

    def inventory(self) -> Inventory:
        """The inventory of --site, read once; a clear error when missing or broken."""
        if self.site_path is None:
            raise click.UsageError("give the site inventory: mpp-provision --site SITE.toml ...")
        path = self.site_path
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise click.ClickException(f"{path}: cannot read the file: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise click.ClickException(f"{path}: not UTF-8 text; save it as UTF-8") from None
        return Inventory.parse(text, str(path))

    def secrets_dir(self, site: Site) -> Path:
        """--secrets, or ~/mpp-secrets/<site id>."""
        return (self.secrets or Path(DEFAULT_SECRETS) / site.site.id).expanduser()

    def store(self, site: Site):  # -> SiteSecrets
        """The opened secrets directory of `site`."""
        from provisioning.site_secrets import SiteSecrets

        store = SiteSecrets.open(self.secrets_dir(site))
        store.check_site(site)
        return store


class Group(click.Group):
    """Turns the project's errors into one clear line and exit status 1."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except (InventoryError, MppError) as exc:
            raise click.ClickException(str(exc)) from None


pass_context = click.make_pass_decorator(Context)


@click.group(cls=Group)
@click.version_option(__version__, prog_name="mpp-provision")
@click.option(
    "--site",
    "site_path",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="MPP_SITE",
    help="The site inventory (TOML). Env: MPP_SITE.",
)
@click.option(
    "--secrets",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="MPP_SECRETS",
    help=f"The site's secrets directory, outside git (default {DEFAULT_SECRETS}/SITE_ID). "
    "Env: MPP_SECRETS.",
)
@click.pass_context
def main(ctx: click.Context, site_path: Path | None, secrets: Path | None) -> None:
    """Provision an MPP's devices from its site inventory."""
    ctx.obj = Context(site_path, secrets)


# -- check --------------------------------------------------------------------------------
@main.command()
@click.argument("site_file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--strict", is_flag=True, help="Warnings count as problems too.")
@pass_context
def check(ctx: Context, site_file: Path | None, strict: bool) -> None:
    """Readiness report: is the site ready to open? Exit 1 on errors."""
    from provisioning.check import ERROR, readiness, summary
    from provisioning.site_secrets import SiteSecrets

    path = site_file or ctx.site_path
    if path is None:
        raise click.UsageError("give the inventory: mpp-provision check SITE.toml")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise click.ClickException(f"{path}: cannot read the file: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise click.ClickException(f"{path}: not UTF-8 text; save the inventory as UTF-8") from None
    store = None
    if ctx.secrets is not None and SiteSecrets.initialised(ctx.secrets):
        store = SiteSecrets.open(ctx.secrets)
    findings = readiness(text, str(path), store)
    click.echo(f"Readiness of {path}:")
    if ctx.secrets is not None and store is None:
        click.echo(
            f"  (no secrets in {ctx.secrets} yet: the inventory alone is checked; "
            "`mpp-provision init` makes them)"
        )
    for finding in findings:
        click.echo(f"  {finding}")
    click.echo(summary(findings))
    if any(f.level == ERROR for f in findings) or (strict and findings):
        sys.exit(1)


# -- init ---------------------------------------------------------------------------------
@main.command()
@click.option(
    "--server",
    "servers",
    multiple=True,
    help="The site server's name or address as devices reach it (repeat for several; the "
    "first goes into bundles). Default: broker.host of the inventory.",
)
@click.option("--renew-server", is_flag=True, help="Issue a new server certificate.")
@pass_context
def init(ctx: Context, servers: tuple[str, ...], renew_server: bool) -> None:
    """Create the secrets: site CA, server certificate, a broker account per machine."""
    from provisioning.site_secrets import SERVER_CERT, SiteSecrets

    site = ctx.inventory().site
    store = SiteSecrets(ctx.secrets_dir(site))
    if renew_server and (store.root / SERVER_CERT).exists():
        (store.root / SERVER_CERT).unlink()
    report = store.init(site, list(servers) or None)
    click.echo(f"secrets of {site.site.id} in {store.root}")
    click.echo(f"  site CA: {'created' if report.created_ca else 'kept'}")
    click.echo(
        f"  server certificate for {', '.join(store.servers)}: "
        f"{'issued' if report.issued_server_cert else 'kept'}"
    )
    click.echo(f"  accounts: {len(report.new_accounts)} new, {len(store.accounts)} in all")
    for name in report.skipped_revoked:
        click.echo(f"  {name}: revoked, left out (mpp-provision rotate {name} re-enables it)")
    for name in report.stale_accounts:
        click.echo(f"  {name}: not in the inventory; revoke it (mpp-provision revoke {name})")
    if report.new_accounts or report.issued_server_cert:
        _rewrite_broker(site, store)


# -- broker -------------------------------------------------------------------------------
@main.command()
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where to write the files (default: SECRETS/broker).",
)
@click.option(
    "--etc",
    "etc_dir",
    default="/etc/mosquitto/mpp",
    show_default=True,
    help="Where the files will live on the site server.",
)
@click.option("--data-dir", default="/var/lib/mosquitto/", show_default=True)
@click.option("--log-dest", default="file /var/log/mosquitto/mosquitto.log", show_default=True)
@click.option(
    "--log-denials/--no-log-denials",
    default=True,
    show_default=True,
    help="Log publishes the ACL refuses (Mosquitto's debug level: a few lines per message).",
)
@click.option("--user", "broker_user", default="mosquitto", show_default=True)
@click.option(
    "--loopback-port",
    type=click.IntRange(1, 65535),
    help="The hub's plain listener on 127.0.0.1 (default: [broker] port of the inventory "
    "when tls = false, else 1883).",
)
@click.option(
    "--device-port",
    type=click.IntRange(1, 65535),
    help="The devices' TLS listener (default: [broker] port when tls = true, else 8883).",
)
@click.option("--device-bind", default="", help="Address of the TLS listener (default: all).")
@click.option(
    "--bridge",
    "bridge_to",
    help="HOST:PORT of the regional broker: the outbox's up/ goes out, down/ comes in.",
)
@click.option(
    "--bridge-prefix",
    default="mpp/v1",
    show_default=True,
    help="The region's topic prefix (its [broker] prefix).",
)
@click.option(
    "--bridge-user", help="This site's account at the regional broker (default: the site id)."
)
@click.option(
    "--bridge-password-env",
    default="MPP_BRIDGE_PASSWORD",
    show_default=True,
    help="Environment variable holding the regional broker password.",
)
@click.option("--bridge-ca", help="CA certificate of the regional broker (TLS), on the server.")
@click.option(
    "--uplink-out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where to write the uplink broker's configuration (default: SECRETS/uplink).",
)
@click.option(
    "--uplink-etc",
    default="/etc/mosquitto/mpp-uplink",
    show_default=True,
    help="Where the uplink broker's configuration will live on the site server.",
)
@click.option(
    "--uplink-port",
    type=click.IntRange(1, 65535),
    default=1884,
    show_default=True,
    help="The uplink broker's loopback listener (its watchdog's probe only; no logins).",
)
@pass_context
def broker(
    ctx: Context,
    *,
    out: Path | None,
    etc_dir: str,
    data_dir: str,
    log_dest: str,
    log_denials: bool,
    broker_user: str,
    loopback_port: int | None,
    device_port: int | None,
    device_bind: str,
    bridge_to: str | None,
    bridge_prefix: str,
    bridge_user: str | None,
    bridge_password_env: str,
    bridge_ca: str | None,
    uplink_out: Path | None,
    uplink_etc: str,
    uplink_port: int,
) -> None:
    """Write the site server's mosquitto.conf, password file, ACL and TLS files; with
    --bridge, also the uplink broker's configuration (the bridge to the region runs there,
    never in the site broker)."""
    from broker_config.files import Bridge, BrokerLayout
    from broker_config.uplink import UplinkLayout
    from provisioning.site_broker import inventory_ports, write_site_broker

    site = ctx.inventory().site
    store = ctx.store(site)
    chosen = {"loopback_port": loopback_port, "device_port": device_port}
    ports = inventory_ports(site) | {k: v for k, v in chosen.items() if v is not None}
    layout = BrokerLayout(
        etc_dir=etc_dir,
        data_dir=data_dir,
        log_dest=log_dest,
        log_denials=log_denials,
        user=broker_user,
        device_bind=device_bind,
        **ports,
    )
    bridge = None
    if bridge_to:
        host, _, port = bridge_to.rpartition(":")
        if not host or not port.isdigit():
            raise click.BadParameter("write it as HOST:PORT", param_hint="--bridge")
        password = os.environ.get(bridge_password_env)
        if not password:
            raise click.ClickException(
                f"the bridge needs this site's password at the regional broker in the "
                f"environment variable {bridge_password_env} (the region's technician has it: "
                "SECRETS/bridges/<site> of `mpp-provision region-broker`)"
            )
        user = bridge_user or site.site.id
        bridge = Bridge(host, int(port), bridge_prefix, user, password, bridge_ca)
    target = out or store.root / "broker"
    explicit = tuple(k for k, v in chosen.items() if v is not None)
    uplink = UplinkLayout(etc_dir=uplink_etc, port=uplink_port)
    uplink_dir = uplink_out or store.root / "uplink"
    written = write_site_broker(
        site, store, target, layout, bridge,
        explicit_ports=explicit, uplink=uplink, uplink_dir=uplink_dir,
    )  # fmt: skip
    click.echo(f"broker files for {site.site.id} in {target}:")
    for path in written:
        click.echo(f"  {path.parent.name}/{path.name}")
    click.echo(
        f"install on the site server into {etc_dir} (see broker_config/README.md), then "
        "`sudo systemctl restart mosquitto`"
    )
    if bridge is not None:
        click.echo(
            f"the bridge to the region runs in the uplink broker: install {uplink_dir.name}/"
            f"mosquitto.conf into {uplink_etc} (root:mosquitto, 0640); the hub's bundle "
            "carries its service, mpp-uplink.service"
        )


@main.command("region-broker")
@click.argument("region_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--secrets",
    "region_secrets",
    type=click.Path(file_okay=False, path_type=Path),
    help=f"The region's secrets directory (default {DEFAULT_SECRETS}/region-REGION_ID).",
)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), help="Output directory.")
@click.option(
    "--server",
    "servers",
    multiple=True,
    help="Name or address the sites' bridges reach the regional broker by (repeatable).",
)
@click.option("--etc", "etc_dir", default="/etc/mosquitto/mpp-region", show_default=True)
@click.option("--data-dir", default="/var/lib/mosquitto/", show_default=True)
@click.option("--log-dest", default="file /var/log/mosquitto/mosquitto.log", show_default=True)
@click.option("--user", "broker_user", default="mosquitto", show_default=True)
@click.option("--loopback-port", type=click.IntRange(1, 65535), default=1883, show_default=True)
@click.option("--bridge-port", type=click.IntRange(1, 65535), default=8883, show_default=True)
@click.option("--bridge-bind", default="", help="Address of the TLS listener (default: all).")
def region_broker(
    *,
    region_file: Path,
    region_secrets: Path | None,
    out: Path | None,
    servers: tuple[str, ...],
    etc_dir: str,
    data_dir: str,
    log_dest: str,
    broker_user: str,
    loopback_port: int,
    bridge_port: int,
    bridge_bind: str,
) -> None:
    """Write the regional Mosquitto's files: per-site accounts, ACL, TLS (see docs/region.md)."""
    from broker_config.region import RegionLayout
    from provisioning.region_broker import SERVICE_PASSWORD, write_region_broker
    from region.config import load_region

    config = load_region(region_file)
    secrets = (region_secrets or Path(DEFAULT_SECRETS) / f"region-{config.region.id}").expanduser()
    target = out or secrets / "broker"
    layout = RegionLayout(
        etc_dir=etc_dir,
        data_dir=data_dir,
        log_dest=log_dest,
        user=broker_user,
        loopback_port=loopback_port,
        bridge_port=bridge_port,
        bridge_bind=bridge_bind,
    )
    written = write_region_broker(config, secrets, target, layout, list(servers))
    click.echo(f"regional broker files for {config.region.id} in {target}:")
    for path in written:
        click.echo(f"  {path}")
    click.echo(
        f"install them into {etc_dir} on the regional server; {SERVICE_PASSWORD} is the region "
        "service's ([broker] password_file); give each site's technician its bridges/<site> "
        "password and ca.crt"
    )


def _rewrite_broker(site: Site, store) -> None:
    from provisioning.site_broker import rewrite_site_broker

    written = rewrite_site_broker(site, store)
    if written:
        click.echo(
            f"broker files rewritten in {written[0].parent}; next, on the site server: "
            "`mpp-provision apply` (installs them, reloads the broker and the hub)"
        )


# -- bundle -------------------------------------------------------------------------------
def bundle_options(func):
    """Options shared by `bundle` and `write-boot`."""
    from provisioning.wheelhouse import TARGETS

    options = [
        click.option(
            "--prefix",
            default="/opt/mpp/venv",
            show_default=True,
            help="Virtualenv on the device; the unit runs PREFIX/bin/mpp.",
        ),
        click.option(
            "--target",
            "targets",
            multiple=True,
            type=click.Choice([*TARGETS, "here"]),
            help="The OS the machine runs, for its wheels (repeat). Default: trixie and "
            "bookworm (Raspberry Pi OS, 64-bit); the hub also server-trixie, server-bookworm "
            "(x86_64). `here`: this machine's Python.",
        ),
        click.option(
            "--wheelhouse",
            type=click.Path(file_okay=False, exists=True, path_type=Path),
            help="Take the wheels from this directory only (no package index at all).",
        ),
        click.option(
            "--package-wheel",
            type=click.Path(dir_okay=False, exists=True, path_type=Path),
            help="The mpp-antrian wheel to install (default: built from this source tree).",
        ),
        click.option(
            "--wheel-cache",
            type=click.Path(file_okay=False, path_type=Path),
            help="Where downloaded wheels are kept (default: ~/.cache/mpp-provision).",
        ),
        click.option(
            "--pip-index",
            help="Install on the device from this package index instead of the bundle's "
            "wheels (the device then needs the network; not pinned by hash).",
        ),
        click.option(
            "--watchdog",
            default=30,
            show_default=True,
            type=int,
            help="WatchdogSec of the unit, in seconds.",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _bundle_options(  # noqa: PLR0917
    prefix, targets, wheelhouse, package_wheel, wheel_cache, pip_index, watchdog
):
    from provisioning.bundle import BundleOptions
    from provisioning.wheelhouse import TARGETS, Software, this_machine
    from provisioning.wheelhouse import package_wheel as build_package

    if pip_index is not None:
        if wheelhouse or package_wheel:
            raise click.UsageError("--pip-index installs from an index: no wheels to give")
        click.echo(
            f"warning: the devices will install from {pip_index} at first boot, not from "
            "wheels pinned by hash in the bundle",
            err=True,
        )
        return BundleOptions(prefix=prefix, pip_index=pip_index, watchdog_s=watchdog)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    cache = (wheel_cache or Path(base) / "mpp-provision").expanduser()
    if package_wheel is None:
        click.echo("building the mpp-antrian wheel from this source tree...", err=True)
        package_wheel = build_package(cache / "package")
    chosen = tuple(this_machine() if t == "here" else TARGETS[t] for t in targets) or None
    return BundleOptions(
        prefix=prefix,
        software=Software(package_wheel, cache / "wheels", source=wheelhouse),
        targets=chosen,
        watchdog_s=watchdog,
    )


@main.command()
@click.argument("device", required=False)
@click.option("--all", "every", is_flag=True, help="Bundle the hub and every device.")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where to write (default: SECRETS/bundles).",
)
@click.option("--archive", is_flag=True, help="Write DEVICE.tar.gz instead of a directory.")
@bundle_options
@pass_context
def bundle(
    ctx: Context, device: str | None, every: bool, out: Path | None, archive: bool, **install
) -> None:
    """Make the bundle of one DEVICE (or `hub`, or --all) for its first boot."""
    from provisioning.bundle import device_kinds, write_bundle

    if bool(device) == every:
        raise click.UsageError("name one DEVICE, or pass --all")
    inventory = ctx.inventory()
    site = inventory.site
    store = ctx.store(site)
    options = _bundle_options(**install)
    target = out or store.root / "bundles"
    devices = list(device_kinds(site)) if every else [device]
    for name in devices:
        if every and name in store.revoked:
            click.echo(
                f"warning: {name}: skipped, its broker account is revoked "
                f"(`mpp-provision rotate {name}` gives it a new one)",
                err=True,
            )
            continue
        written = write_bundle(
            inventory, store, name, out_dir=target, options=options, archive=archive
        )
        click.echo(f"{name}: {written}")


# -- write-boot ---------------------------------------------------------------------------
@main.command("write-boot")
@click.argument("device")
@click.argument("boot_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--ssh-key",
    "ssh_key",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The technician's SSH public key file (authorized_keys format).",
)
@click.option(
    "--user",
    "admin_user",
    default="teknisi",
    show_default=True,
    help="The technician's login on the device.",
)
@click.option("--wifi-ssid", help="Join this Wi-Fi network (Ethernet is always on).")
@click.option(
    "--wifi-password-env",
    default="MPP_WIFI_PASSWORD",
    show_default=True,
    help="Environment variable holding the Wi-Fi password.",
)
@click.option("--wifi-country", default="ID", show_default=True)
@click.option("--force", is_flag=True, help="Write even if BOOT_DIR has no config.txt.")
@bundle_options
@pass_context
def write_boot(
    ctx: Context,
    *,
    device: str,
    boot_dir: Path,
    ssh_key: Path,
    admin_user: str,
    wifi_ssid: str | None,
    wifi_password_env: str,
    wifi_country: str,
    force: bool,
    **install,
) -> None:
    """Write cloud-init first-boot files and the bundle onto a mounted Pi boot partition."""
    from provisioning.boot import BootOptions, read_ssh_keys
    from provisioning.boot import write_boot as write

    inventory = ctx.inventory()
    site = inventory.site
    store = ctx.store(site)
    wifi_password = os.environ.get(wifi_password_env) if wifi_ssid else None
    if wifi_ssid and not wifi_password:
        raise click.ClickException(
            f"--wifi-ssid needs the Wi-Fi password in the environment variable {wifi_password_env}"
        )
    options = BootOptions(
        ssh_keys=read_ssh_keys(ssh_key),
        admin_user=admin_user,
        wifi_ssid=wifi_ssid,
        wifi_password=wifi_password,
        wifi_country=wifi_country,
    )
    written = write(
        boot_dir,
        inventory,
        store,
        device,
        bundle_options=_bundle_options(**install),
        options=options,
        force=force,
    )
    for item in written:
        click.echo(f"wrote {item}")
    click.echo(f"eject the card, put it in {device} and power it on; `fleet` shows it online")


# -- apply --------------------------------------------------------------------------------
@main.command()
@click.option(
    "--hub-site",
    type=click.Path(dir_okay=False, path_type=Path),
    default="/etc/mpp/site.toml",
    show_default=True,
    help="The inventory file the hub runs (its unit's --site).",
)
@click.option(
    "--broker-etc",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where Mosquitto reads its files (default: --etc of the last `broker` run).",
)
@click.option("--hub-pid", type=int, help="Send SIGHUP to this hub process (no systemd).")
@click.option("--broker-pid", type=int, help="Send SIGHUP to this Mosquitto (no systemd).")
@click.option(
    "--web-unit",
    default="mpp-web.service",
    show_default=True,
    help="The web app's unit, restarted if it runs ('' to leave it).",
)
@click.option("--timeout", default=20.0, show_default=True, type=click.FloatRange(1, 300))
@pass_context
def apply(
    ctx: Context,
    *,
    hub_site: Path,
    broker_etc: Path | None,
    hub_pid: int | None,
    broker_pid: int | None,
    web_unit: str,
    timeout: float,
) -> None:
    """Bring the inventory to the broker, the hub and the web; list bundles to make again."""
    from provisioning import apply as steps
    from provisioning.bundle import device_site_toml, slice_version
    from provisioning.check import ERROR, readiness
    from provisioning.fleet import Connection, FleetWatcher
    from provisioning.site_broker import current_layout, rewrite_site_broker

    inventory = ctx.inventory()
    site = inventory.site
    store = ctx.store(site)
    errors = [f for f in readiness(inventory.text, inventory.source, store) if f.level == ERROR]
    # Devices without an account yet are what this command is for: `init` below.
    errors = [f for f in errors if not f.message.startswith("no broker account yet")]
    if errors:
        for finding in errors:
            click.echo(f"  {finding}", err=True)
        raise click.ClickException(f"{inventory.source} is not ready: nothing was changed")
    if store.broker_settings() is None:
        raise click.ClickException("run `mpp-provision broker` once first (the broker's files)")
    report = store.init(site)
    for name in report.new_accounts:
        click.echo(f"{name}: new broker account")
    for name in report.stale_accounts:
        click.echo(f"{name}: not in the inventory; revoke it (mpp-provision revoke {name})")
    written = rewrite_site_broker(site, store)
    layout = current_layout(site, store)
    targets = steps.Targets(
        hub_site=hub_site,
        broker_etc=broker_etc,
        hub_pid=hub_pid,
        broker_pid=broker_pid,
        web_unit=web_unit or None,
    )
    etc = broker_etc or Path(layout.etc_dir)
    changed = steps.install_broker_files(written[0].parent, etc) if written else []
    click.echo(f"broker: {', '.join(changed) or 'no file'} changed in {etc}")
    steps.reload_broker(targets)
    click.echo("broker: reloaded (passwords and ACL)")
    if steps.conf_changed(changed):
        click.echo("broker: mosquitto.conf changed: `sudo systemctl restart mosquitto` for it")
    expected = slice_version(inventory, store, "hub")
    steps.install_hub_site(device_site_toml(inventory, store, "hub"), hub_site)
    connection = Connection("127.0.0.1", layout.loopback_port, "monitor", store.password("monitor"))
    with FleetWatcher(site, connection) as watcher:
        steps.reload_hub(targets)
        deadline = time.monotonic() + timeout
        state = watcher.site_state
        while time.monotonic() < deadline:
            state = watcher.site_state
            if state is not None and (
                state.config_version == expected
                or (state.config_refused or "").startswith(f"{expected}:")
            ):
                break
            time.sleep(0.1)
    if state is not None and state.config_refused and state.config_version != expected:
        raise click.ClickException(f"hub: kept its inventory, refused {state.config_refused}")
    if state is None or state.config_version != expected:
        raise click.ClickException(
            f"hub: did not say it runs {expected} within {timeout:g} s; see "
            "`journalctl -u mpp-hub` (it keeps the inventory it runs)"
        )
    click.echo(f"hub: runs inventory version {expected}")
    if steps.restart_web(targets):
        click.echo(f"web: {web_unit} restarted")
    stale = steps.stale_bundles(inventory, store)
    for device, reason in stale.items():
        click.echo(f"bundle to make again: {device} ({reason}): mpp-provision write-boot {device}")
    if not stale:
        click.echo("every device's bundle is up to date")


# -- replace / revoke / rotate ------------------------------------------------------------
@main.command()
@click.argument("old")
@click.argument("new")
@pass_context
def replace(ctx: Context, old: str, new: str) -> None:
    """Move dead device OLD's slot to NEW: renames it in the inventory, OLD stops working."""
    from provisioning.inventory import rename_device
    from provisioning.site_secrets import SiteSecrets

    inventory = ctx.inventory()
    site = inventory.site
    store = ctx.store(site)
    renamed = rename_device(inventory.text, old, new, inventory.source)
    store.replace(old, new)
    Path(inventory.source).write_text(renamed, encoding="utf-8")
    click.echo(f"{inventory.source}: [devices.{old}] is now [devices.{new}]")
    click.echo(f"{old}: broker account revoked; {new}: new account")
    _rewrite_broker(load_site(inventory.source), SiteSecrets.open(store.root))
    click.echo(
        f"next: `mpp-provision apply` (the running hub learns {new}), then "
        f"`mpp-provision write-boot {new} BOOT_DIR ...` for the new Pi"
    )


@main.command()
@click.argument("device")
@pass_context
def revoke(ctx: Context, device: str) -> None:
    """Revoke DEVICE's broker account (lost, stolen or retired)."""
    site = ctx.inventory().site
    store = ctx.store(site)
    store.revoke(device)
    click.echo(f"{device}: broker account revoked")
    _rewrite_broker(site, store)
    if device in site.devices:
        click.echo(
            f"{device} is still in the inventory: remove it there, or give a new Pi its slot "
            f"with `mpp-provision rotate {device}`"
        )


@main.command()
@click.argument("device")
@pass_context
def rotate(ctx: Context, device: str) -> None:
    """New password for DEVICE (same id, e.g. a replacement Pi); the old one stops working."""
    from provisioning.bundle import role_of

    site = ctx.inventory().site
    store = ctx.store(site)
    role = "monitor" if device == "monitor" else role_of(site, device)
    store.rotate(device, role)
    click.echo(f"{device}: new broker password; make its bundle again")
    _rewrite_broker(site, store)


# -- fleet --------------------------------------------------------------------------------
@main.command()
@click.option("--host", help="Broker host (default: the first --server given to init).")
@click.option("--port", type=click.IntRange(1, 65535), help="Broker port (default: TLS 8883).")
@click.option("--plain", is_flag=True, help="No TLS (the loopback listener on the server).")
@click.option(
    "--ca",
    "ca_file",
    type=click.Path(dir_okay=False),
    help="CA certificate (default: the site CA from the secrets).",
)
@click.option("--user", "username", default="monitor", show_default=True)
@click.option(
    "--optional",
    "optional",
    multiple=True,
    help="A device whose absence does not fail the check (repeat).",
)
@click.option(
    "--watch",
    "watch",
    type=click.FloatRange(0.5, 3600),
    help="Refresh every this many seconds until Ctrl-C.",
)
@click.option("--count", type=click.IntRange(1), help="With --watch: stop after this many tables.")
@click.option("--timeout", default=5.0, show_default=True, type=click.FloatRange(0.5, 60))
@pass_context
def fleet(
    ctx: Context,
    *,
    host: str | None,
    port: int | None,
    plain: bool,
    ca_file: str | None,
    username: str,
    optional: tuple[str, ...],
    watch: float | None,
    count: int | None,
    timeout: float,
) -> None:
    """Live table of every device's presence; exit 1 when a required device is offline."""
    from protocol.errors import BrokerUnavailable
    from provisioning.bundle import slice_version
    from provisioning.fleet import Connection, FleetWatcher, config_line, down, render_table
    from provisioning.site_broker import current_layout

    inventory = ctx.inventory()
    site = inventory.site
    store = ctx.store(site)
    layout = current_layout(site, store)
    if plain:
        host = host or "127.0.0.1"
        port = port or layout.loopback_port
    else:
        host = host or store.servers[0]
        port = port or layout.device_port
        ca_file = ca_file or str(store.root / "ca.crt")
    connection = Connection(
        host, port, username, store.password(username), None if plain else ca_file
    )
    unknown = [d for d in optional if d not in site.devices and d != "hub"]
    if unknown:
        raise click.BadParameter(
            f"not in the inventory: {', '.join(unknown)}", param_hint="--optional"
        )
    expected = slice_version(inventory, store, "hub")
    watcher = FleetWatcher(site, connection, state_file=store.root / "fleet-seen.json")
    try:
        watcher.start(timeout=timeout)
    except BrokerUnavailable as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(FLEET_UNREACHABLE)
    try:
        shown = 0
        while True:
            entries = watcher.entries()
            if watch and sys.stdout.isatty():
                click.echo("\x1b[H\x1b[2J", nl=False)
            click.echo(render_table(site, entries, time.time()))
            click.echo(config_line(watcher.site_state, expected))
            missing = down(entries, set(optional))
            if missing:
                click.echo(f"OFFLINE: {', '.join(missing)}")
            shown += 1
            if watch is None or (count is not None and shown >= count):
                break
            time.sleep(watch)
            click.echo("")
    except KeyboardInterrupt:
        pass
    finally:
        watcher.stop()
    sys.exit(1 if missing else 0)
