"""The two tiers on this machine: site brokers bridged over a cuttable 'WAN' (a TCP relay on
loopback) with TLS to a regional Mosquitto made by `mpp-provision region-broker`'s code, hubs
with an outbox, the region service and a real PostgreSQL."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from broker_config.region import REGION_USER, RegionLayout
from demo.region import RegionalBroker
from demo.wan import WanLink
from hub.service import HubService
from protocol.brokers import Mosquitto, free_port
from protocol.mqtt import Bus
from protocol.site import Site
from region.config import RegionConfig, parse_region
from region.service import RegionService
from tests.broker_config.conftest import SiteBroker, start_site_broker
from tests.region.sites import region_site, region_text

PREFIX = "kalsel/v1"  # the region remaps the sites' topics under a prefix of its own
# The uplink's watchdog in tests: a hung uplink broker is restarted within about 3 s.
WATCHDOG = {"probe_every_s": 0.5, "probe_timeout_s": 1.0, "misses": 3}


@dataclass
class SiteTier:
    """One site: its broker (bridged over its own WAN link) and a way to make its hub."""

    site: Site
    broker: SiteBroker
    wan: WanLink
    database: Path
    site_text: str
    _gen: Iterator[SiteBroker]

    def hub(self) -> HubService:
        """A hub for this site, logged in to its broker as `hub`."""
        bus = Bus.for_device(
            self.site, "hub", username="hub", password=self.broker.passwords["hub"]
        )
        return HubService(self.site, bus=bus, first_start=True)


@dataclass
class RegionRig:
    """The regional broker, the sites, the region service; everything stopped by `close()`."""

    top: Path
    dsn: str
    made: RegionalBroker
    sites: dict[str, SiteTier] = field(default_factory=dict)
    services: list[RegionService] = field(default_factory=list)

    @property
    def layout(self) -> RegionLayout:
        """Where the regional broker listens."""
        assert self.made.layout is not None
        return self.made.layout

    @property
    def passwords(self) -> dict[str, str]:
        """The regional broker's accounts."""
        return self.made.passwords

    @property
    def ca_file(self) -> Path:
        """The regional CA's certificate."""
        assert self.made.ca_file is not None
        return self.made.ca_file

    @property
    def regional(self) -> Mosquitto:
        """The regional Mosquitto."""
        assert self.made.broker is not None
        return self.made.broker

    def config(self) -> RegionConfig:
        """The region service's configuration."""
        sites = "".join(f'[[sites]]\nid = "{s}"\nname = "MPP {s}"\n' for s in self.sites)
        return parse_region(
            '[region]\nid = "kalsel"\nname = "Kalsel"\ntimezone = "Asia/Makassar"\n'
            f'[database]\ndsn = "{self.dsn}"\n'
            f'[broker]\nport = {self.layout.loopback_port}\nprefix = "{PREFIX}"\n'
            f'username = "{REGION_USER}"\n' + sites
        )

    def region(self) -> RegionService:
        """A started region service (stopped by `close()` unless stopped before)."""
        service = RegionService(self.config(), password=self.passwords[REGION_USER]).start()
        self.services.append(service)
        return service

    def add_site(
        self, site_id: str, *, bridge_in_site_broker: bool = False, **hub: object
    ) -> SiteTier:
        """A site broker and its uplink broker, bridged to the region over a WAN link of its
        own (`bridge_in_site_broker`: the bridge in the site broker, as before the uplink)."""
        top = self.top / site_id
        top.mkdir()
        top.chmod(0o755)
        site = region_site(free_port(), top / "hub.sqlite", site_id, **hub)
        text = region_text(site.broker.port, top / "hub.sqlite", site_id, **hub)
        wan = WanLink(self.layout.bridge_port).restore()
        bridge = self.made.bridge(site_id, wan.port)
        gen = start_site_broker(
            top, bridge, site, bridge_in_site_broker=bridge_in_site_broker, **WATCHDOG
        )
        tier = SiteTier(site, next(gen), wan, top / "hub.sqlite", text, gen)
        self.sites[site_id] = tier
        return tier

    def close(self) -> None:
        """Stop everything this rig started."""
        for service in self.services:
            with contextlib.suppress(Exception):
                service.stop()
        for tier in self.sites.values():
            tier.wan.close()
            tier._gen.close()
        self.made.close()
        shutil.rmtree(self.top, ignore_errors=True)


def start_rig(dsn: str, site_ids: list[str]) -> RegionRig:
    """The regional broker (accounts for `site_ids` and the region service) on free ports."""
    top = Path(tempfile.mkdtemp(prefix="mpp-region-test-"))
    top.chmod(0o755)
    passwords = {user: f"pw-{user}" for user in [REGION_USER, *site_ids]}
    made = RegionalBroker(top / "regional", site_ids, PREFIX, passwords).start()
    return RegionRig(top, dsn, made)
