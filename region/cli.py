"""`mpp region`: the regional server's commands (the ingest service, the web app, accounts)."""

from __future__ import annotations

import signal
import threading

import click

from protocol.errors import MppError
from protocol.logs import setup_logging

CONFIG = click.option(
    "--config",
    "config_file",
    required=True,
    type=click.Path(dir_okay=False),
    envvar="MPP_REGION",
    help="The region configuration (TOML). Env: MPP_REGION.",
)


class Group(click.Group):
    """Turns the project's errors into one clear line and exit status 1."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except MppError as exc:
            raise click.ClickException(str(exc)) from None


@click.group("region", cls=Group)
def command() -> None:
    """The regional server: every site's history in PostgreSQL, and the regional web."""


@command.command("run")
@CONFIG
@click.option("--log-level", default="INFO", show_default=True)
def run(config_file: str, log_level: str) -> None:
    """Store every site's events in PostgreSQL until stopped (Ctrl-C, SIGTERM)."""
    from region.config import load_region
    from region.service import RegionService

    setup_logging(log_level)
    config = load_region(config_file)
    service = RegionService(config).start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    click.echo(f"region {config.region.id}: storing events from {len(config.sites)} site(s)")
    stop.wait()
    service.stop()


@command.command("init-db")
@CONFIG
def init_db(config_file: str) -> None:
    """Create the region's tables in its PostgreSQL database (idempotent)."""
    from region.config import load_region
    from region.db import connect, create_schema

    config = load_region(config_file)
    with connect(config.database.dsn) as conn:
        create_schema(conn)
    click.echo("region database ready")
