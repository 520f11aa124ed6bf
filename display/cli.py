"""`mpp display`: run one TV of the site (lobby, canteen or entrance) until stopped."""

from __future__ import annotations

import logging
import os
import signal
import time
from pathlib import Path

import click

from protocol.errors import InventoryError, MppError
from protocol.logs import setup_logging
from protocol.site import load_site

log = logging.getLogger("mpp.display")


def default_cache_dir() -> Path:
    """Where synthesised speech and featured images are kept: $XDG_CACHE_HOME/mpp-display
    (~/.cache/mpp-display)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mpp-display"


@click.command("display")
@click.option(
    "--site", "site_file", required=True, type=click.Path(dir_okay=False), help="Site inventory."
)
@click.option("--device", required=True, help="This display's id in the inventory.")
@click.option(
    "--windowed/--fullscreen",
    "windowed",
    default=None,
    help="Window mode (default: fullscreen on a Pi, a window on a desktop).",
)
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Cache folder for speech and featured images (default: ~/.cache/mpp-display).",
)
@click.option(
    "--voice-pack",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    default=None,
    help="Folder of recorded WAV clips replacing synthesised speech (see display/README.md).",
)
@click.option(
    "--max-age",
    type=click.FloatRange(1, 3600),
    default=30.0,
    show_default=True,
    help="Calls older than this many seconds are shown but not spoken (after a reconnect, ...).",
)
@click.option(
    "--password-file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="File holding this device's broker password (user name: the device id).",
)
@click.option(
    "--run-for", type=float, default=None, help="Stop after this many seconds (checks, benches)."
)
@click.option(
    "--screenshot",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Save the screen as a PNG when stopping.",
)
@click.option("--log-level", default="INFO", show_default=True)
def command(
    *,
    site_file: str,
    device: str,
    windowed: bool | None,
    cache_dir: Path | None,
    voice_pack: Path | None,
    max_age: float,
    password_file: Path | None,
    run_for: float | None,
    screenshot: Path | None,
    log_level: str,
) -> None:
    """Show the queue on this TV and speak the calls."""
    setup_logging(log_level)
    from display.announcer import SpeechAnnouncer
    from display.app import DisplayApp, display_device, layout_factory
    from display.featured import FeaturedImages
    from display.renderer import MixerPlayer, Renderer
    from display.video import on_raspberry_pi, video_plan
    from protocol import systemd
    from protocol.mqtt import Bus

    try:
        site = load_site(site_file)
        spec = display_device(site, device)
    except (InventoryError, MppError) as exc:
        raise click.ClickException(str(exc)) from None
    plan = video_plan(
        os.environ,
        is_pi=on_raspberry_pi(),
        fullscreen=None if windowed is None else not windowed,
        inventory_fullscreen=spec.screen.fullscreen,
    )
    password = password_file.read_text().strip() if password_file else None
    bus = Bus.for_device(
        site, device, username=device if password is not None else None, password=password
    )
    renderer = Renderer(
        layout_factory(site, spec.zone),
        (spec.screen.width, spec.screen.height),
        plan,
        title=f"{site.site.name} — {device}",
    )
    cache = cache_dir or default_cache_dir()
    announcer = SpeechAnnouncer(MixerPlayer(), cache, voice_pack=voice_pack)
    images = FeaturedImages(cache / "featured", site.media_url(), device=device)
    app = DisplayApp(
        site,
        device,
        bus=bus,
        renderer=renderer,
        announcer=announcer,
        images=images,
        base_dir=Path(site_file).resolve().parent,
        max_age_s=max_age,
    )
    signal.signal(signal.SIGTERM, lambda *_: app.stop())
    signal.signal(signal.SIGINT, lambda *_: app.stop())
    try:
        app.start()
        systemd.notify("READY=1")
        pacer = systemd.WatchdogPacer()
        app.run(timeout=run_for, on_loop=lambda: pacer.ping(time.monotonic()))
        if screenshot is not None:
            renderer.save_png(screenshot)
    except MppError as exc:
        raise click.ClickException(str(exc)) from None
    except Exception:
        log.exception("display crashed", extra={"device": device})
        raise
    finally:
        app.close()
