"""Inventory slices for one device, and renaming a device in the inventory text."""

from __future__ import annotations

import pytest

from protocol.errors import InventoryError
from protocol.site import parse_site
from provisioning.inventory import (
    BrokerAddress,
    Inventory,
    ProvisioningError,
    device_slice,
    rename_device,
)
from tests.conftest import example_text

ADDRESS = BrokerAddress("mpp-server.local", 8883)


@pytest.mark.parametrize("device", ["kiosk-3", "caller-03", "tv-canteen-1"])
def test_slice_loads_and_holds_only_its_device(device: str) -> None:
    full = parse_site(example_text())
    part = parse_site(device_slice(Inventory.parse(example_text()), device, ADDRESS))
    assert list(part.devices) == [device]
    assert part.devices[device] == full.devices[device]
    # Everything it shows and speaks is there, unchanged.
    assert part.services == full.services and part.counters == full.counters
    assert part.zones == full.zones and part.site == full.site
    assert (part.broker.host, part.broker.port, part.broker.tls) == ("mpp-server.local", 8883, True)
    assert part.broker.ca_file == "/etc/mpp/ca.crt"
    assert part.broker.mqtt_version == full.broker.mqtt_version


def test_the_hub_gets_every_device_and_loopback() -> None:
    part = parse_site(
        device_slice(
            Inventory.parse(example_text()), "hub", BrokerAddress("127.0.0.1", 1883, False, None)
        )
    )
    assert len(part.devices) == 40
    assert (part.broker.host, part.broker.tls, part.broker.ca_file) == ("127.0.0.1", False, None)


def test_slice_of_an_unknown_device_names_it() -> None:
    with pytest.raises(ProvisioningError, match=r"devices.caller-99: no such device"):
        device_slice(Inventory.parse(example_text()), "caller-99", ADDRESS)


def test_slice_of_a_broken_inventory_lists_its_problems() -> None:
    broken = example_text().replace('prefix = "H"', 'prefix = "A"')
    with pytest.raises(InventoryError, match=r"services.skck.prefix"):
        device_slice(Inventory.parse(broken), "kiosk-1", ADDRESS)


def test_rename_keeps_comments_and_moves_every_subtable() -> None:
    text = example_text() + '\n[devices.extra-1]\nrole = "display"\nzone = "lobby"\n'
    text += "[devices.extra-1.screen]\nwidth = 1280\nheight = 720\n"
    renamed = rename_device(text, "extra-1", "extra-2")
    site = parse_site(renamed)
    assert "extra-1" not in site.devices and site.devices["extra-2"].screen.width == 1280
    assert renamed.count("#") == text.count("#")  # every comment kept
    assert renamed.replace("extra-2", "extra-1") == text


def test_rename_refuses_what_it_cannot_do() -> None:
    with pytest.raises(ProvisioningError, match=r"devices.caller-04: already in"):
        rename_device(example_text(), "caller-03", "caller-04")
    with pytest.raises(ProvisioningError, match=r"devices.nope: no such device"):
        rename_device(example_text(), "nope", "nope-2")
    inline = example_text() + '\n[devices]\nodd = { role = "display", zone = "lobby" }\n'
    with pytest.raises(ProvisioningError, match=r"cannot be renamed automatically"):
        rename_device(inline, "odd", "odd-2")
