"""Display fixtures: screens on SDL's dummy driver, states as the hub publishes them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from display.announcer import RecordingAnnouncer
from display.app import DisplayApp, layout_factory
from display.renderer import Renderer
from display.scene import SceneBuilder
from display.state import ScreenModel
from display.video import VideoPlan
from protocol import messages as m
from protocol.mqtt import Bus
from protocol.site import Site
from tests.conftest import EXAMPLE

EXAMPLES = EXAMPLE.parent
DUMMY = VideoPlan(("dummy",), fullscreen=False)


Factory = Callable[..., DisplayApp]


@pytest.fixture
def display_app() -> Iterator[Factory]:
    """Factory: a started DisplayApp of an inventory display (SDL dummy video), closed after."""
    made: list[DisplayApp] = []

    def make(site: Site, device: str = "tv-lobby-1", announcer=None, **kw) -> DisplayApp:
        spec = site.devices[device]
        renderer = Renderer(layout_factory(site, spec.zone), (1366, 768), DUMMY)
        app = DisplayApp(
            site,
            device,
            bus=Bus.for_device(site, device),
            renderer=renderer,
            announcer=announcer or RecordingAnnouncer(),
            base_dir=EXAMPLES,
            **kw,
        )
        app.start()
        made.append(app)
        return app

    yield make
    for app in made:
        app.close()


@pytest.fixture
def open_renderer() -> Iterator[Callable[[Site, str, tuple[int, int]], Renderer]]:
    """Factory: an opened Renderer of a zone at a size (SDL dummy video), closed afterwards."""
    made: list[Renderer] = []

    def make(site: Site, zone: str, size: tuple[int, int]) -> Renderer:
        renderer = Renderer(layout_factory(site, zone), size, DUMMY)
        renderer.open()
        made.append(renderer)
        return renderer

    yield make
    for renderer in made:
        renderer.close()


def builder(site: Site, zone: str, renderer: Renderer, lang: str = "id") -> SceneBuilder:
    """A scene builder for the renderer's layout, images from examples/."""
    assert renderer.layout is not None
    return SceneBuilder(site, zone, renderer.layout, lang, EXAMPLES)


def busy_model(site: Site, now: float, closed: tuple[int, ...] = (7, 14)) -> ScreenModel:
    """A model as after a busy morning: every counter called once (counter n at now-100+n),
    some counters closed, every service with people waiting."""
    model = ScreenModel(site)
    seq = 0
    for number, counter in sorted(site.counters.items()):
        seq += 1
        code = counter.services[0]
        called = number not in closed
        model.apply(
            m.CounterState(
                seq=seq,
                counter=number,
                open=called,
                call_seq=number,
                ticket=f"{site.services[code].prefix}{number * 3:03d}" if called else None,
                service=code if called else None,
                called_at=now - 100 + number if called else None,
                waiting=3,
            ),
            now,
        )
    for i, code in enumerate(site.services):
        seq += 1
        model.apply(
            m.ServiceState(
                seq=seq, service=code, open=i != 3, waiting=2 * i, est_wait_s=600, quota_left=50
            ),
            now,
        )
    return model


def png_pixels(path: Path):
    """The PNG's pixels as a Pillow RGB image (what the TV would show)."""
    from PIL import Image

    return Image.open(path).convert("RGB")
