"""`mpp hub`: run the site's queue authority (and its web app) until stopped."""

from __future__ import annotations

import logging
import signal
import threading

import click

from protocol.errors import InventoryError, MppError
from protocol.logs import setup_logging
from protocol.site import load_site

log = logging.getLogger("mpp.hub")


@click.command("hub")
@click.option(
    "--site",
    "site_file",
    required=True,
    type=click.Path(dir_okay=False),
    help="The site inventory (TOML).",
)
@click.option(
    "--database",
    type=click.Path(dir_okay=False),
    default=None,
    help="SQLite file (default: hub.database of the inventory).",
)
@click.option("--log-level", default="INFO", show_default=True)
def command(site_file: str, database: str | None, log_level: str) -> None:
    """Run the hub: queue on SQLite, MQTT service, retained state."""
    from hub.service import HubService

    setup_logging(log_level)
    try:
        site = load_site(site_file)
        service = HubService(site, database=database).start()
    except (InventoryError, MppError) as exc:
        raise click.ClickException(str(exc)) from None
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    click.echo(f"hub running for {site.site.name}; database {service.database}; Ctrl-C stops")
    stop.wait()
    service.stop()
