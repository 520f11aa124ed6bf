"""`mpp kiosk`: run a ticket kiosk from the site inventory, or preview its ticket as a PNG.

mpp kiosk run --site examples/banjarbaru.toml --device kiosk-1
mpp kiosk preview --site examples/banjarbaru.toml --service skck --lang en --out ticket.png
"""

from __future__ import annotations

import logging
import signal
import threading
import time

import click

from protocol.errors import MppError
from protocol.logs import setup_logging
from protocol.messages import PRIORITIES
from protocol.site import KioskDevice, Printer, Site, load_site

log = logging.getLogger("mpp.kiosk")


def _site(site_file: str) -> Site:
    try:
        return load_site(site_file)
    except MppError as exc:
        raise click.ClickException(str(exc)) from None


def _kiosk(site: Site, device_id: str) -> KioskDevice:
    spec = site.devices.get(device_id)
    if not isinstance(spec, KioskDevice):
        kiosks = ", ".join(d for d, s in site.devices.items() if isinstance(s, KioskDevice))
        raise click.ClickException(f"{device_id!r} is not a kiosk of {site.source}; use {kiosks}")
    return spec


@click.group("kiosk")
def command() -> None:
    """Ticket kiosk: service buttons or touch menu, thermal printer."""


@command.command("run")
@click.option("--site", "site_file", required=True, type=click.Path(dir_okay=False))
@click.option("--device", "device_id", required=True, help="The kiosk's id in the inventory.")
@click.option(
    "--printer-file",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write tickets to this file instead of the inventory's printer (demo, bench).",
)
@click.option("--log-level", default="INFO", show_default=True)
def run(
    site_file: str,
    device_id: str,
    printer_file: str | None,
    log_level: str,
) -> None:
    """Run the kiosk until stopped (SIGTERM / Ctrl-C).

    Under its systemd unit the broker password comes from the unit's credential; the service
    reports READY and pings the watchdog from its main loop.
    """
    from kiosk.app import KioskApp, offered_services
    from kiosk.buttons import KioskPanel
    from kiosk.printer import TicketPrinter
    from protocol import systemd
    from protocol.mqtt import Bus

    setup_logging(log_level)
    site = _site(site_file)
    spec = _kiosk(site, device_id)
    printer_spec = spec.printer
    if printer_file is not None:
        base = printer_spec.model_dump() if printer_spec else {}
        base.update(connection="file", path=printer_file)
        printer_spec = Printer.model_validate(base)
    if printer_spec is None:
        raise click.ClickException(
            f"devices.{device_id} has no printer; add printer = {{ connection = ... }}"
        )
    stop = threading.Event()  # before connecting: a SIGTERM at any moment stops cleanly
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    menu = panel = app = scanner = None
    try:
        printer = TicketPrinter.from_inventory(printer_spec)
        bus = Bus.for_device(site, device_id, **systemd.broker_login(device_id))
        if spec.buttons or spec.priority_button is not None or spec.leds.ready is not None:
            panel = KioskPanel(spec, device_id=device_id)
        if spec.screen is not None:
            from kiosk.menu import TouchMenu

            menu = TouchMenu(
                site,
                offered_services(site, spec),
                size=(spec.screen.width, spec.screen.height),
                fullscreen=spec.screen.fullscreen,
                lang=spec.lang,
            )
        app = KioskApp(site, device_id, bus, printer, panel=panel, menu=menu).start()
        if spec.scanner is not None:  # booking check-in by the USB 2D barcode scanner
            from kiosk.scanner import Scanner

            scanner = Scanner(spec.scanner, app.check_in).start()
    except MppError as exc:
        if panel is not None:
            panel.close()
        raise click.ClickException(str(exc)) from None
    click.echo(f"kiosk {device_id} running: {len(app.services)} services; Ctrl-C stops")
    systemd.notify("READY=1")
    pacer = systemd.WatchdogPacer()
    try:
        if menu is not None:
            menu.run(stop, on_frame=lambda: pacer.ping(time.monotonic()))
        else:
            while not stop.wait(1.0):
                pacer.ping(time.monotonic())
    finally:
        if scanner is not None:
            scanner.stop()
        app.stop()
        printer.close()
        if panel is not None:
            panel.close()
        if menu is not None:
            menu.close()


@command.command("preview")
@click.option("--site", "site_file", required=True, type=click.Path(dir_okay=False))
@click.option("--service", default=None, help="Service code (default: the first one).")
@click.option("--lang", type=click.Choice(["id", "en"]), default="id", show_default=True)
@click.option(
    "--priority",
    type=click.Choice(PRIORITIES),
    default=None,
    help="Preview a priority ticket.",
)
@click.option(
    "--device", "device_id", default=None, help="Use this kiosk's paper width (58 or 80 mm)."
)
@click.option("--out", required=True, type=click.Path(dir_okay=False, writable=True))
def preview(
    *,
    site_file: str,
    service: str | None,
    lang: str,
    priority: str | None,
    device_id: str | None,
    out: str,
) -> None:
    """Render a sample ticket to a PNG: the ESC/POS bytes the kiosk's printer would get,
    drawn as that printer prints them (its paper width and profile; default 80 mm)."""
    from kiosk.preview import save_preview
    from kiosk.printer import render
    from kiosk.ticket import sample_ticket, ticket_layout

    site = _site(site_file)
    printer = Printer(connection="dummy")
    if device_id is not None:
        spec = _kiosk(site, device_id)
        printer = spec.printer or printer
    try:
        info = sample_ticket(site, service or next(iter(site.services)), time.time())
        info = info.model_copy(update={"priority": priority})
        data = render(ticket_layout(site, info, lang), printer)
        path = save_preview(data, out, printer)
    except (MppError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"ticket {info.number} ({info.service}, {lang}) written to {path}")
