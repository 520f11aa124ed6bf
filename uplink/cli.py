"""`mpp uplink`: run the uplink broker (the site's bridge to the region) and restart it when
it stops answering. The site server's `mpp-uplink.service` runs this."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import click

from protocol.errors import MppError
from protocol.logs import setup_logging


@click.command("uplink")
@click.option(
    "--config",
    "config_file",
    default="/etc/mosquitto/mpp-uplink/mosquitto.conf",
    show_default=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The uplink broker's configuration (from `mpp-provision broker --bridge`).",
)
@click.option(
    "--probe-every",
    type=click.FloatRange(0.5, 60),
    default=2.0,
    show_default=True,
    help="Seconds between two probes of the broker.",
)
@click.option(
    "--misses",
    type=click.IntRange(1, 20),
    default=3,
    show_default=True,
    help="Probes in a row without an answer before the broker is restarted.",
)
@click.option("--log-level", default="INFO", show_default=True)
def command(config_file: Path, probe_every: float, misses: int, log_level: str) -> None:
    """Run the uplink broker; kill and restart it when it stops answering."""
    from uplink.watchdog import UplinkWatchdog

    setup_logging(log_level)
    try:
        watchdog = UplinkWatchdog(config_file, probe_every_s=probe_every, misses=misses)
    except MppError as exc:
        raise click.ClickException(str(exc)) from None
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    click.echo(f"uplink broker {config_file}: probed on 127.0.0.1:{watchdog.port}")
    watchdog.run(stop)
