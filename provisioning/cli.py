"""The `mpp-provision` command for technicians."""

from __future__ import annotations

import click

from protocol import __version__


@click.group()
@click.version_option(__version__, prog_name="mpp-provision")
def main() -> None:
    """Provision an MPP's devices from its site inventory."""
