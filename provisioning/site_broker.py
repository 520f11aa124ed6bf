"""The site server's broker files, made from the inventory and the secrets directory.

`mpp-provision broker` writes them; `revoke`, `replace` and `rotate` rewrite them with the
same settings, so the technician only copies the files and reloads Mosquitto. With a bridge
to the region it also writes the uplink broker's configuration (broker_config/uplink.py):
the site broker itself never carries the bridge.
"""

from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from broker_config.acl import UPLINK
from broker_config.files import Bridge, BrokerLayout, render_broker_files, write_broker_files
from broker_config.uplink import CONF as UPLINK_CONF
from broker_config.uplink import UplinkLayout, render_uplink_conf
from protocol.site import Site
from provisioning.inventory import ProvisioningError
from provisioning.site_secrets import SiteSecrets

PORTS = ("loopback_port", "device_port")


def inventory_ports(site: Site) -> dict[str, int]:
    """The listener ports the inventory's `[broker]` names: with `tls = true` its port is the
    devices' TLS listener, otherwise the plain loopback listener the hub uses."""
    if site.broker.tls:
        return {"loopback_port": 1883, "device_port": site.broker.port}
    return {"loopback_port": site.broker.port, "device_port": 8883}


def current_layout(site: Site, store: SiteSecrets) -> BrokerLayout:
    """The broker layout in force: the last `broker` run's, with every port not given on its
    command line taken from the inventory as it is now (an edited `[broker] port` counts)."""
    settings = store.broker_settings()
    if settings is None:
        return BrokerLayout(**inventory_ports(site))
    layout = BrokerLayout(**settings["layout"])
    explicit = settings.get("explicit_ports", [])
    ports = {k: v for k, v in inventory_ports(site).items() if k not in explicit}
    return replace(layout, **ports)


def write_site_broker(
    site: Site,
    store: SiteSecrets,
    out_dir: Path,
    layout: BrokerLayout,
    bridge: Bridge | None = None,
    *,
    explicit_ports: tuple[str, ...] = PORTS,
    uplink: UplinkLayout | None = None,
    uplink_dir: Path | None = None,
) -> list[Path]:
    """Write mosquitto.conf, passwd, acl and TLS files to `out_dir` (and with a `bridge`, the
    uplink broker's mosquitto.conf to `uplink_dir`, default: `uplink` beside `out_dir`);
    remember the settings.

    `explicit_ports` are the layout's ports the technician chose; the others follow the
    inventory's `[broker] port` on every rewrite.
    """
    store.check_site(site)
    missing = [d for d in site.devices if d not in store.accounts and d not in store.revoked]
    if missing:
        raise ProvisioningError(
            f"no broker account for {', '.join(missing)}; run `mpp-provision init` first"
        )
    uplink_conf = None
    if bridge is not None:
        if UPLINK not in store.accounts:
            raise ProvisioningError(
                f"no `{UPLINK}` broker account for the uplink broker's bridge into the site "
                "broker; run `mpp-provision init` again (it adds the account)"
            )
        uplink = uplink or UplinkLayout()
        uplink_dir = uplink_dir or out_dir.parent / "uplink"
        uplink_conf = render_uplink_conf(site, uplink, bridge, store.password(UPLINK), layout)
    ca, server = store.ca, store.server
    files = render_broker_files(
        site,
        layout,
        store.broker_accounts(),
        ca_cert_pem=ca.cert_pem,
        server_cert_pem=server.cert_pem,
        server_key_pem=server.key_pem,
    )
    written = write_broker_files(out_dir, files)
    settings: dict[str, Any] = {
        "out_dir": str(out_dir.resolve()),
        "layout": asdict(layout),
        "explicit_ports": list(explicit_ports),
    }
    if bridge is not None and uplink_conf is not None and uplink_dir is not None:
        written += write_broker_files(uplink_dir, {UPLINK_CONF: uplink_conf.encode()})
        settings |= {
            "bridge": asdict(bridge),
            "uplink": asdict(uplink or UplinkLayout()),
            "uplink_dir": str(uplink_dir.resolve()),
        }
    store.save_broker_settings(settings)
    return written


def uplink_settings(store: SiteSecrets) -> UplinkLayout | None:
    """The uplink broker's layout when the last `broker` run bridged the site to a region."""
    settings = store.broker_settings() or {}
    if not settings.get("bridge"):
        return None
    return UplinkLayout(**settings.get("uplink", {}))


def rewrite_site_broker(site: Site, store: SiteSecrets) -> list[Path]:
    """Rewrite the broker files exactly as the last `broker` run did (nothing if never run)."""
    settings = store.broker_settings()
    if settings is None:
        return []
    bridge = Bridge(**settings["bridge"]) if settings.get("bridge") else None
    explicit = tuple(settings.get("explicit_ports", []))
    layout = current_layout(site, store)
    uplink_dir = Path(settings["uplink_dir"]) if settings.get("uplink_dir") else None
    return write_site_broker(
        site,
        store,
        Path(settings["out_dir"]),
        layout,
        bridge,
        explicit_ports=explicit,
        uplink=uplink_settings(store),
        uplink_dir=uplink_dir,
    )
