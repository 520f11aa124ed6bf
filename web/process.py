"""The web process's life: load the inventory, connect to the broker as the `web` account,
serve the app on the inventory's listeners, tell systemd, stop cleanly on SIGTERM."""

from __future__ import annotations

import logging
import signal
import threading
import time

import click

from protocol import systemd
from protocol.errors import InventoryError, MppError
from protocol.logs import setup_logging
from protocol.site import Site, load_site
from web.server import Limits, Listener, WebServer

log = logging.getLogger("mpp.web")
WEB_DEVICE = "web"


def listeners(site: Site) -> list[Listener]:
    """http for everyone (ticket pages, screens); https for staff when the inventory has TLS."""
    web = site.web
    out = [Listener(web.host, web.port)]
    if web.tls_cert is not None:
        out.append(Listener(web.host, web.tls_port, web.tls_cert, web.tls_key))
    return out


def limits(site: Site) -> Limits:
    """Connection limits: room for every allowed live stream plus ordinary requests."""
    return Limits(max_connections=site.web.max_streams + 1000)


def run(site_file: str, log_level: str) -> None:
    """Serve until SIGTERM or Ctrl-C."""
    from protocol.mqtt import Bus
    from web.app import close_app, create_app
    from web.hub_link import HubLink

    setup_logging(log_level)
    try:
        site = load_site(site_file)
        bus = Bus.for_device(site, WEB_DEVICE, **systemd.broker_login(WEB_DEVICE))
        link = HubLink(site, bus)
        app = create_app(site, link)
        link.start()  # after the app subscribed its listeners: nothing retained is missed
        server = WebServer(app, listeners(site), limits(site)).start()
    except (InventoryError, MppError) as exc:
        raise click.ClickException(str(exc)) from None
    if site.web.tls_cert is None:
        log.warning(
            "staff pages are served over plain http: passwords and session cookies cross the "
            "LAN in clear text; set web.tls_cert and web.tls_key (mpp-provision init makes them)"
        )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    click.echo(f"web app for {site.site.name}: {', '.join(server.urls())}; Ctrl-C stops")
    systemd.notify("READY=1")
    pacer = systemd.WatchdogPacer()
    while not stop.wait(1.0):
        pacer.ping(time.monotonic())  # the loop turns only while the event loop is free
    server.stop()
    close_app(app)
    link.stop()


def add_account(site_file: str, username: str, role: str) -> None:
    """Create a staff account from the terminal (the first admin has no web page to do it)."""
    from web.users import AccountError, UserStore

    try:
        site = load_site(site_file)
    except InventoryError as exc:
        raise click.ClickException(str(exc)) from None
    name = click.prompt("Full name", default=username)
    password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    users = UserStore(site.web.database_path(site.hub.database))
    try:
        user = users.add(username, name, role, password)
    except AccountError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        users.close()
    click.echo(f"account {user.username} ({user.role}) created")
