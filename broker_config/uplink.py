"""The uplink broker's configuration: the site's bridge to the region, out of the site broker.

Mosquitto 2.0.11 (Debian bookworm's) can hang in its bridge code when the WAN accepts and then
resets the bridge's connections: the broker spins and serves nobody (docs/region.md). The
bridge therefore runs in a second Mosquitto on the site server, the uplink broker, which
reaches the site broker as an ordinary client (`uplink` account, ACL from the topic table)
and the region as today's bridge did. The site broker carries no bridge at all.

    text = render_uplink_conf(site, UplinkLayout(), bridge, site_password)
"""

from __future__ import annotations

from dataclasses import dataclass

from broker_config.acl import UPLINK
from broker_config.files import (
    BRIDGED,
    Bridge,
    BrokerConfigError,
    BrokerLayout,
    render_bridge,
    template,
)
from protocol.messages import MAX_PAYLOAD_BYTES
from protocol.site import Site
from protocol.topics import ROOT

CONF = "mosquitto.conf"
# The uplink's configuration holds two passwords (the site broker's and the region's).
PRIVATE = frozenset({CONF})


@dataclass(frozen=True)
class UplinkLayout:
    """Where the uplink broker's file lives and its loopback port (for the watchdog only)."""

    etc_dir: str = "/etc/mosquitto/mpp-uplink"
    log_dest: str = "stderr"  # `mpp uplink` runs it: its log goes to the unit's journal
    user: str = "mosquitto"
    port: int = 1884
    max_queued_messages: int = 10000

    def __post_init__(self) -> None:
        if not self.etc_dir.startswith("/") or any(c.isspace() for c in self.etc_dir):
            raise BrokerConfigError(
                f"etc_dir: {self.etc_dir!r} must be an absolute path without spaces"
            )
        if not 1 <= self.port <= 65535:
            raise BrokerConfigError(f"uplink port: {self.port} is not a TCP port")


def render_uplink_conf(
    site: Site,
    layout: UplinkLayout,
    bridge: Bridge,
    site_password: str,
    site_broker: BrokerLayout | None = None,
) -> str:
    """mosquitto.conf of the uplink broker: a bridge into the site broker's loopback listener
    (up/ in, down/ out) and the bridge to the region (up/ out, down/ in)."""
    site_broker = site_broker or BrokerLayout()
    if layout.port in (site_broker.loopback_port, site_broker.device_port):
        raise BrokerConfigError(
            f"uplink port {layout.port} is one of the site broker's; choose another"
        )
    if not site_password or any(c.isspace() for c in site_password):
        raise BrokerConfigError("the uplink's site broker password is empty or has spaces")
    prefix = f"{ROOT}/{site.site.id}/"
    flipped = {"out": "in", "in": "out"}  # the site broker is this bridge's remote end
    site_topics = "".join(
        f"topic {pattern} {flipped[direction]} 1 {prefix} {prefix}\n"
        for pattern, direction in BRIDGED
    )
    text = template("uplink-mosquitto.conf.tmpl").substitute(
        site_id=site.site.id,
        site_name=site.site.name,
        user=layout.user,
        log_dest=layout.log_dest,
        max_packet_size=2 * MAX_PAYLOAD_BYTES,
        max_queued_messages=layout.max_queued_messages,
        port=layout.port,
        site_port=site_broker.loopback_port,
        site_user=UPLINK,
        site_password=site_password,
        site_topics=site_topics,
    )
    return text + render_bridge(site, bridge)
