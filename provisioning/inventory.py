"""Pieces of the site inventory for one machine, and renaming a device in the inventory file.

A device gets the whole site description (services, counters, zones: it shows and speaks
them) but only its own `[devices.ID]` entry, and the broker address it must use::

    inventory = Inventory.parse(text, "site.toml")
    part = device_slice(inventory, "caller-03", BrokerAddress("mpp-server.local"))
    parse_site(part)          # loads like any inventory
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from typing import Any

from protocol.errors import InventoryError, MppError
from protocol.site import Site, parse_site
from provisioning.toml_writer import dumps

DEVICE_DIR = "/etc/mpp"  # where a bundle's files live on the device


class ProvisioningError(MppError):
    """A provisioning step cannot be done; the message says what to do instead."""


@dataclass(frozen=True)
class BrokerAddress:
    """How a machine reaches the site broker."""

    host: str
    port: int = 8883
    tls: bool = True
    ca_file: str | None = f"{DEVICE_DIR}/ca.crt"


@dataclass(frozen=True)
class Inventory:
    """A site inventory read once: its text, where it came from, the model and the raw data."""

    text: str
    source: str
    site: Site
    data: dict[str, Any]

    @classmethod
    def parse(cls, text: str, source: str = "<site inventory>") -> Inventory:
        """Validate `text` (InventoryError lists every problem) and keep its raw tables."""
        site = parse_site(text, source)
        data = tomllib.loads(text)
        data.pop("version", None)  # computed on load, never written
        data.pop("source", None)
        return cls(text, source, site, data)


def device_slice(
    inventory: Inventory,
    device: str,
    broker: BrokerAddress,
    web_tls: tuple[str, str] | None = None,
) -> str:
    """The inventory as `device` needs it: every site table, only its own device entry (the
    site server's: with the web process's https certificate and key files, `web_tls`)."""
    site, source = inventory.site, inventory.source
    if device not in site.devices and device != "hub":
        raise ProvisioningError(
            f"devices.{device}: no such device in {source}; "
            f"known: {', '.join(site.devices) or 'none'}"
        )
    data = dict(inventory.data)  # new top-level tables below; nested ones are not changed
    devices = data.get("devices", {})
    data["devices"] = devices if device == "hub" else {device: devices[device]}
    broker_table = dict(data.get("broker", {}))
    broker_table.update(host=broker.host, port=broker.port, tls=broker.tls)
    if broker.ca_file is not None:
        broker_table["ca_file"] = broker.ca_file
    else:
        broker_table.pop("ca_file", None)
    data["broker"] = broker_table
    if web_tls is not None:
        data["web"] = dict(data.get("web", {})) | {"tls_cert": web_tls[0], "tls_key": web_tls[1]}
    header = (
        f"Site inventory of {site.site.name} ({site.site.id}) for {device}.\n"
        f"Made by `mpp-provision bundle` from inventory version {site.version}: do not edit here;\n"
        "change the site inventory and make a new bundle."
    )
    out = dumps(_ordered(data), header)
    parse_site(out, f"slice of {source} for {device}")  # never hand out a slice that fails
    return out


def _ordered(data: dict[str, Any]) -> dict[str, Any]:
    """Tables in the order a technician reads them: site first, devices last."""
    first = ["site", "broker", "hub"]
    last = ["devices"]
    keys = [k for k in first if k in data]
    keys += [k for k in data if k not in first and k not in last]
    keys += [k for k in last if k in data]
    return {k: data[k] for k in keys}


def rename_device(text: str, old: str, new: str, source: str = "<site inventory>") -> str:
    """The inventory text with device `old` renamed to `new`; comments and layout are kept."""
    site = parse_site(text, source)
    if old not in site.devices:
        raise ProvisioningError(f"devices.{old}: no such device in {source}")
    if new in site.devices:
        raise ProvisioningError(f"devices.{new}: already in {source}; choose an unused id")
    header = re.compile(
        rf'^(\s*\[\s*devices\s*\.\s*)("{re.escape(old)}"|{re.escape(old)})(\s*[\].])', re.MULTILINE
    )
    renamed, count = header.subn(rf"\g<1>{new}\g<3>", text)
    if count == 0:
        raise ProvisioningError(
            f"devices.{old} is not written as a [devices.{old}] table in {source}, so it cannot "
            f"be renamed automatically; write it as [devices.{old}] and run replace again"
        )
    try:
        result: Site = parse_site(renamed, source)
    except InventoryError as exc:
        raise ProvisioningError(f"renaming {old} to {new} breaks the inventory: {exc}") from None
    if old in result.devices or new not in result.devices:
        raise ProvisioningError(f"devices.{old} is defined in more than one way in {source}")
    return renamed
