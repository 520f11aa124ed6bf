"""`mpp hub`: run the site's queue authority (and its web app) until stopped."""

from __future__ import annotations

import gc
import hashlib
import logging
import signal
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
@click.option("--no-web", is_flag=True, help="Do not serve the web app.")
@click.option(
    "--add-user",
    metavar="USERNAME",
    default=None,
    help="Create a web staff account (asks for name and password), then exit.",
)
@click.option(
    "--role",
    type=click.Choice(["officer", "supervisor", "admin"]),
    default="admin",
    show_default=True,
    help="Role of the account made by --add-user.",
)
def command(
    site_file: str,
    database: str | None,
    log_level: str,
    *,
    first_start: bool,
    no_web: bool,
    add_user: str | None,
    role: str,
) -> None:
    """Run the hub: queue on SQLite, MQTT service, retained state, and the web app.

    At start the database is checked (PRAGMA quick_check): a damaged one is refused (restore
    the daily backup, see docs/reliability.md); a missing or empty one is made only with
    --first-start. The hub exits with status 1 if its worker stops (systemd restarts it).
    """
    from hub.service import HubService
    from protocol import systemd
    from protocol.mqtt import Bus

    setup_logging(log_level)
    try:
        site = load_site(site_file)
        if add_user is not None:
            _add_user(database or site.hub.database, add_user, role, first_start)
            return
        service = HubService(
            site,
            database=database,
            bus=Bus.for_device(site, "hub", **systemd.broker_login("hub")),
            first_start=first_start,
        ).start()
    except (InventoryError, MppError) as exc:
        raise click.ClickException(str(exc)) from None
    web = None
    if not no_web:
        from hub.web import create_app
        from hub.web.server import WebServer

        try:
            web = WebServer(create_app(service), site.web.host, site.web.port).start()
        except MppError as exc:
            # Devices must keep their queue even when the web port is taken: run without it.
            log.error("web app not started", extra={"error": str(exc)})
            click.echo(f"web app not started: {exc}", err=True)
    # What the start loaded (modules, schemas, the day's queue, the web app) lives as long as
    # the process: spare it from every later full collection (measured: pauses of 19-33 ms in
    # front of commands with 5,000 tickets held, found by gc.callbacks in bench/hub_bench.py).
    # Here, not in HubService.start: it is the process's choice (a test or the demo running a
    # hub among other things must not have their objects frozen for good).
    gc.collect()
    gc.freeze()
    stop, reload = threading.Event(), threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    # `systemctl reload mpp-hub` (mpp-provision apply): read the inventory file again.
    signal.signal(signal.SIGHUP, lambda *_: (reload.set(), stop.set()))
    where = f"; web {web.url}" if web else ""
    click.echo(
        f"hub running for {site.site.name}; database {service.database}{where}; Ctrl-C stops"
    )
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
    if web is not None:
        web.stop()
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


def _add_user(database: str, username: str, role: str, first_start: bool) -> None:
    """Create a staff account from the terminal (the first admin has no web page to do it)."""
    from hub.store import Store
    from hub.web.users import UserStore

    # The database and its tables exist before the first start (checked like a start).
    Store(database, first_start=first_start).close()
    name = click.prompt("Full name", default=username)
    password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    users = UserStore(database)
    try:
        user = users.add(username, name, role, password)
    finally:
        users.close()
    click.echo(f"account {user.username} ({user.role}) created")
