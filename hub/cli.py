"""`mpp hub`: run the site's queue authority until stopped (the web app is `mpp web`)."""

from __future__ import annotations

import gc
import hashlib
import logging
import signal
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from protocol.errors import InventoryError, MppError
from protocol.logs import setup_logging
from protocol.site import load_site, parse_site

if TYPE_CHECKING:
    from hub.service import HubService

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
@click.option(
    "--first-start",
    is_flag=True,
    help="Create the database if it is missing or empty: once, on the site's first start. "
    "Without it (or the provisioning's DATABASE.first-start file beside it) the hub refuses "
    "to start on a missing or empty database, as on a disk that is not mounted.",
)
@click.option("--log-level", default="INFO", show_default=True)
def command(
    site_file: str,
    database: str | None,
    log_level: str,
    *,
    first_start: bool,
) -> None:
    """Run the hub: queue on SQLite, MQTT service, retained state, outbox (no HTTP: the web
    app is its own process, `mpp web`).

    At start the database is checked (PRAGMA quick_check): a damaged one is refused (restore
    the daily backup, see docs/reliability.md); a missing or empty one is made only with
    --first-start. The hub exits with status 1 if its worker stops (systemd restarts it).
    """
    from hub.service import SWITCH_INTERVAL_S, HubService
    from protocol import systemd
    from protocol.mqtt import Bus

    setup_logging(log_level)
    try:
        site = load_site(site_file)
        service = HubService(
            site,
            database=database,
            bus=Bus.for_device(site, "hub", **systemd.broker_login("hub")),
            first_start=first_start,
        ).start()
    except (InventoryError, MppError) as exc:
        raise click.ClickException(str(exc)) from None
    # What the start loaded (modules, schemas, the day's queue) lives as long as
    # the process: spare it from every later full collection (measured: pauses of 19-33 ms in
    # front of commands with 5,000 tickets held, found by gc.callbacks in bench/hub_bench.py).
    # Here, not in HubService.start: it is the process's choice (a test or the demo running a
    # hub among other things must not have their objects frozen for good).
    gc.collect()
    gc.freeze()
    sys.setswitchinterval(SWITCH_INTERVAL_S)  # also the process's choice (see its comment)
    stop, reload = threading.Event(), threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    # `systemctl reload mpp-hub` (mpp-provision apply): read the inventory file again.
    signal.signal(signal.SIGHUP, lambda *_: (reload.set(), stop.set()))
    click.echo(f"hub running for {site.site.name}; database {service.database}; Ctrl-C stops")
    systemd.notify("READY=1")
    pacer = systemd.WatchdogPacer()
    while service.failed is None:
        stopping = stop.wait(1.0)
        if reload.is_set():
            reload.clear()
            stop.clear()
            reload_inventory(service, site_file)
            continue
        if stopping:
            break
        if service.alive():  # a stuck worker stops the pings: systemd restarts the hub
            pacer.ping(time.monotonic())
    service.stop()
    if service.failed is not None:  # a dead worker answers nothing: exit, systemd restarts
        raise click.ClickException(f"the hub stopped: {service.failed}")


def reload_inventory(service: HubService, site_file: str) -> str | None:
    """Give the running hub the inventory file as it is now; the refusal's reason, or None."""
    try:
        text = Path(site_file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        version, reason = "?", f"{site_file}: cannot read it ({exc})"
    else:
        version = hashlib.sha256(text.encode()).hexdigest()[:12]  # as parse_site computes it
        try:
            site = parse_site(text, site_file)
        except InventoryError as exc:
            reason = str(exc).replace("\n", "; ")
        else:
            refused = service.reload_site(site)
            if refused is None:
                log.info("inventory reloaded", extra={"file": site_file, "version": version})
            return refused
    service.refuse_site(f"{version}: {reason}"[:200])
    log.error("inventory not reloaded", extra={"file": site_file, "error": reason})
    return reason
