"""`mpp web`: the site web app in its own process, on gevent (see web/server.py)."""

from __future__ import annotations

import click


@click.command("web")
@click.option(
    "--site",
    "site_file",
    required=True,
    type=click.Path(dir_okay=False),
    help="The site inventory (TOML).",
)
@click.option("--log-level", default="INFO", show_default=True)
@click.option(
    "--add-user",
    metavar="USERNAME",
    default=None,
    help="Create a staff account (asks for name and password), then exit.",
)
@click.option(
    "--role",
    type=click.Choice(["officer", "supervisor", "admin"]),
    default="admin",
    show_default=True,
    help="Role of the account made by --add-user.",
)
def command(site_file: str, log_level: str, add_user: str | None, role: str) -> None:
    """Serve the site web app (dashboard, reports, web caller, screens, ticket pages)."""
    if add_user is not None:
        from web.process import add_account

        add_account(site_file, add_user, role)
        return
    # First of all: every later import (paho, ssl, sqlite users, Flask) then cooperates with
    # the other connections instead of blocking the process.
    from gevent import monkey

    monkey.patch_all()

    from web.process import run

    run(site_file, log_level)
