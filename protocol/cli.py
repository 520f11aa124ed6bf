"""The `mpp` command: one entry point, a subcommand per part (hub, kiosk, caller, display...).

Each part's command lives in that part's package and is imported only when it runs, so
`mpp hub` on the site server never imports pygame or gpiozero.
"""

from __future__ import annotations

import importlib

import click

from protocol import __version__

# subcommand -> "module:attribute" of a click command; parts add themselves here.
SUBCOMMANDS: dict[str, str] = {
    "inventory": "protocol.cli:inventory",
    "hub": "hub.cli:command",
    "web": "web.cli:command",
    "simulate": "demo.cli:simulate",
    "demo": "demo.cli:demo",
    "kiosk": "kiosk.cli:command",
    "caller": "caller.cli:command",
    "display": "display.cli:command",
    "selftest": "provisioning.selftest:command",
    "region": "region.cli:command",
    "uplink": "uplink.cli:command",
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(SUBCOMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = SUBCOMMANDS.get(cmd_name)
        if target is None:
            return None
        module, attribute = target.split(":")
        return getattr(importlib.import_module(module), attribute)


@click.group(cls=LazyGroup)
@click.version_option(__version__, prog_name="mpp")
def main() -> None:
    """MPP queue and signage system: run one part of it, or the whole site as a demo."""


@click.command()
@click.argument("site_file", type=click.Path(dir_okay=False))
def inventory(site_file: str) -> None:
    """Validate a site inventory and summarise it."""
    from protocol.errors import InventoryError
    from protocol.site import load_site

    try:
        site = load_site(site_file)
    except InventoryError as exc:
        raise click.ClickException(str(exc)) from None
    roles = [d.role for d in site.devices.values()]
    click.echo(
        f"{site.site.name} ({site.site.id}, {site.site.timezone}), version {site.version}: "
        f"{len(site.agencies)} agencies, {len(site.services)} services, "
        f"{len(site.counters)} counters, {len(site.zones)} zones, "
        f"{roles.count('kiosk')} kiosks, {roles.count('caller')} caller boxes, "
        f"{roles.count('display')} displays"
    )


if __name__ == "__main__":
    main()
