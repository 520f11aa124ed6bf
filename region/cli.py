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
@click.option("--worker", type=int, default=None, hidden=True, help="Ingest worker N only.")
def run(config_file: str, log_level: str, worker: int | None) -> None:
    """Store every site's events in PostgreSQL until stopped (Ctrl-C, SIGTERM); with
    [ingest] workers > 1 it starts and watches the other workers itself."""
    from region.config import load_region
    from region.service import Partition, RegionService
    from region.workers import Workers, die_with_parent

    setup_logging(log_level)
    config = load_region(config_file)
    count = config.ingest.workers
    if worker is not None and not 0 < worker < count:
        raise click.UsageError(f"--worker {worker}: [ingest] workers is {count}")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    if worker is not None:
        die_with_parent()
    pool = Workers(config_file, count, log_level).start() if worker is None else None
    try:
        service = RegionService(config, partition=Partition(worker or 0, count)).start()
        if pool is not None:
            click.echo(
                f"region {config.region.id}: storing events from {len(config.sites)} site(s) "
                f"with {count} worker(s)"
            )
        while not stop.wait(1.0):
            if pool is not None:
                pool.watch()
        service.stop()
    finally:
        if pool is not None:
            pool.stop()


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


@command.command("web")
@CONFIG
@click.option("--log-level", default="INFO", show_default=True)
def web(config_file: str, log_level: str) -> None:
    """Serve the regional web app (gevent, as the site's web process; TLS from [web])."""
    # First of all, as `mpp web` does: every later import then cooperates with gevent
    # (psycopg 3 does from 3.1.14 on).
    from gevent import monkey

    monkey.patch_all()

    from psycopg_pool import ConnectionPool

    from region.config import load_region
    from region.db import connect, create_schema
    from region.web import create_app
    from web.server import Listener, WebServer

    setup_logging(log_level)
    config = load_region(config_file)
    with connect(config.database.dsn) as conn:
        create_schema(conn)
    pool = ConnectionPool(config.database.dsn, min_size=2, max_size=16, open=True)
    app = create_app(config, pool)
    listener = Listener(config.web.host, config.web.port, config.web.tls_cert, config.web.tls_key)
    server = WebServer(app, [listener]).start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    click.echo(f"regional web for {config.region.name}: {', '.join(server.urls())}; Ctrl-C stops")
    while not stop.wait(1.0):
        pass
    server.stop()
    pool.close()


@command.command("add-user")
@CONFIG
@click.argument("username")
@click.option(
    "--role", type=click.Choice(["viewer", "supervisor", "admin"]), default="admin",
    show_default=True,
)  # fmt: skip
@click.option("--name", default="", help="The person's name (default: the username).")
def add_user(config_file: str, username: str, role: str, name: str) -> None:
    """Create a regional web account (asks for its password)."""
    from psycopg_pool import ConnectionPool

    from region.config import load_region
    from region.db import connect, create_schema
    from region.web.accounts import Accounts

    config = load_region(config_file)
    with connect(config.database.dsn) as conn:
        create_schema(conn)
    password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    with ConnectionPool(config.database.dsn, min_size=1, max_size=1, open=True) as pool:
        user = Accounts(pool).add(username, name or username, role, password)
    click.echo(f"account {user.username} ({user.role}) created")
