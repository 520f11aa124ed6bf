"""Shared fixtures: a real Mosquitto on a free loopback port, the example site, a clock."""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

from protocol.brokers import Mosquitto
from protocol.site import Site, parse_site

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "banjarbaru.toml"
_site_ids = itertools.count(1)

# Timing varies on a loaded 2-core CI machine: no per-example deadline.
settings.register_profile(
    "mpp", deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
settings.load_profile("mpp")


def example_text() -> str:
    """The example inventory's TOML text."""
    return EXAMPLE.read_text(encoding="utf-8")


def make_site(port: int = 1883, text: str | None = None, site_id: str | None = None, **hub) -> Site:
    """The example site with its own site id (isolates retained topics), broker port and
    optional [hub] overrides such as database paths."""
    text = text or example_text()
    site_id = site_id or f"test-{os.getpid()}-{next(_site_ids)}"
    text = re.sub(r'(?m)^id = "mpp-banjarbaru"', f'id = "{site_id}"', text, count=1)
    text = re.sub(r"(?m)^port = 1883$", f"port = {port}", text, count=1)
    for key, value in hub.items():
        rendered = f'"{value}"' if isinstance(value, str | Path) else str(value).lower()
        text = (
            re.sub(rf"(?m)^({key}) = .*$", rf"\1 = {rendered}", text, count=1)
            if re.search(rf"(?m)^{key} = ", text)
            else text.replace("[hub]\n", f"[hub]\n{key} = {rendered}\n", 1)
        )
    return parse_site(text, "test-site.toml")


@pytest.fixture(scope="session")
def broker() -> Iterator[Mosquitto]:
    """One Mosquitto for the whole session; tests isolate themselves by site id."""
    with Mosquitto() as mosquitto:
        yield mosquitto


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[Mosquitto]:
    """A Mosquitto of this test alone (for restarts and kills), persistence on."""
    mosquitto = Mosquitto(persistence=True, workdir=tmp_path / "broker", extra="user root")
    mosquitto.start()
    yield mosquitto
    mosquitto.close()


@pytest.fixture
def site(broker: Mosquitto, tmp_path: Path) -> Site:
    """The example site on the session broker, with a database in this test's temp dir."""
    return make_site(broker.port, database=tmp_path / "hub.sqlite")
