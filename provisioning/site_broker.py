"""The site server's broker files, made from the inventory and the secrets directory.

`mpp-provision broker` writes them; `revoke`, `replace` and `rotate` rewrite them with the
same settings, so the technician only copies the files and reloads Mosquitto.
"""

from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from broker_config.files import Bridge, BrokerLayout, render_broker_files, write_broker_files
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
) -> list[Path]:
    """Write mosquitto.conf, passwd, acl and TLS files to `out_dir`; remember the settings.

    `explicit_ports` are the layout's ports the technician chose; the others follow the
    inventory's `[broker] port` on every rewrite.
    """
    store.check_site(site)
    missing = [d for d in site.devices if d not in store.accounts and d not in store.revoked]
    if missing:
        raise ProvisioningError(
            f"no broker account for {', '.join(missing)}; run `mpp-provision init` first"
        )
    ca, server = store.ca, store.server
    files = render_broker_files(
        site,
        layout,
        store.broker_accounts(),
        ca_cert_pem=ca.cert_pem,
        server_cert_pem=server.cert_pem,
        server_key_pem=server.key_pem,
        bridge=bridge,
    )
    written = write_broker_files(out_dir, files)
    settings: dict[str, Any] = {
        "out_dir": str(out_dir.resolve()),
        "layout": asdict(layout),
        "explicit_ports": list(explicit_ports),
    }
    if bridge is not None:
        settings["bridge"] = asdict(bridge)
    store.save_broker_settings(settings)
    return written


def rewrite_site_broker(site: Site, store: SiteSecrets) -> list[Path]:
    """Rewrite the broker files exactly as the last `broker` run did (nothing if never run)."""
    settings = store.broker_settings()
    if settings is None:
        return []
    bridge = Bridge(**settings["bridge"]) if settings.get("bridge") else None
    explicit = tuple(settings.get("explicit_ports", []))
    layout = current_layout(site, store)
    return write_site_broker(
        site, store, Path(settings["out_dir"]), layout, bridge, explicit_ports=explicit
    )
