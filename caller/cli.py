"""`mpp caller`: run one counter's caller box and rating pad until stopped."""

from __future__ import annotations

import logging
import signal
import threading
import time

import click

from protocol.errors import MppError
from protocol.logs import setup_logging

log = logging.getLogger("mpp.caller")
TICK_S = 0.25


@click.command("caller")
@click.option(
    "--site",
    "site_file",
    required=True,
    type=click.Path(dir_okay=False),
    help="The site inventory (TOML).",
)
@click.option("--device", "device_id", required=True, help="This box's id, e.g. caller-03.")
@click.option(
    "--officer",
    default=None,
    help="Officer name sent when OPEN/CLOSE opens the counter (default: the last officer "
    "the hub reported for this counter, else 'petugas').",
)
@click.option(
    "--debounce-ms",
    default=600,
    show_default=True,
    type=click.IntRange(0, 5000),
    help="Presses of one button closer together than this count as one.",
)
@click.option(
    "--timeout-s",
    default=3.0,
    show_default=True,
    type=click.FloatRange(0.2, 30),
    help="How long a press waits for the hub's answer before fault feedback.",
)
@click.option("--log-level", default="INFO", show_default=True)
def command(
    *,
    site_file: str,
    device_id: str,
    officer: str | None,
    debounce_ms: int,
    timeout_s: float,
    log_level: str,
) -> None:
    """Run a counter's caller box: buttons, LEDs, buzzer, character display, rating pad."""
    from caller.box import CallerBox, caller_device
    from caller.buttons import CallerPanel
    from caller.lcd import CharDisplay, LcdError, RplcdDisplay
    from protocol import systemd
    from protocol.mqtt import Bus
    from protocol.site import load_site

    setup_logging(log_level)
    try:
        site = load_site(site_file)
        device = caller_device(site, device_id)
        panel = CallerPanel(device, device_id)
    except MppError as exc:
        raise click.ClickException(str(exc)) from None
    bus = Bus.for_device(site, device_id, **systemd.broker_login(device_id))
    display: CharDisplay | None = None
    if device.lcd is not None:
        try:
            display = RplcdDisplay(device.lcd)
        except LcdError as exc:
            # The box still works with LEDs and buzzer; the hub sees lcd=error in its health.
            log.error(
                "character display unavailable", extra={"device": device_id, "error": str(exc)}
            )
            bus.health = bus.health.model_copy(update={"lcd": "error"})
        else:
            bus.health = bus.health.model_copy(update={"lcd": "ok"})
    box = CallerBox(
        site,
        device_id,
        bus,
        panel=panel,
        display=display,
        officer=officer,
        debounce_s=debounce_ms / 1000,
        request_timeout_s=timeout_s,
    ).start()
    bus.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    click.echo(
        f"caller box {device_id} for {site.counter_name(device.counter)} at {site.site.name}; "
        f"broker {site.broker.host}:{site.broker.port}; Ctrl-C stops"
    )
    systemd.notify("READY=1")
    pacer = systemd.WatchdogPacer()
    try:
        while not stop.wait(TICK_S):
            box.tick()
            pacer.ping(time.monotonic())
    finally:
        box.close()
        bus.stop()
        panel.close()
