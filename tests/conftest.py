"""Shared fixtures: a real Mosquitto on a free loopback port, the example site, a clock."""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

import demo.site
from hub.service import HubService
from protocol.brokers import Mosquitto
from protocol.mqtt import Bus
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
    """The example inventory's TOML text (in the time zone MPP_TEST_TIMEZONE names, if set:
    tests/wallclock.py runs the suite at other local hours that way)."""
    text = EXAMPLE.read_text(encoding="utf-8")
    zone = os.environ.get("MPP_TEST_TIMEZONE")
    if zone:
        text = re.sub(r'(?m)^timezone = "[^"]*"', f'timezone = "{zone}"', text, count=1)
    return text


def site_text(
    port: int = 1883,
    text: str | None = None,
    site_id: str | None = None,
    always_open: bool = False,
    **hub,
) -> str:
    """The example inventory with its own site id (isolates retained topics), broker port and
    optional [hub] overrides such as database paths. `always_open` makes every service take
    tickets at any hour (no opening hours, no cut-offs) for tests that run on the real clock."""
    text = text or example_text()
    # Tests issue tickets over the bus without printing them; the hold for unprinted kiosk
    # tickets has its own tests (tests/hub/test_rules.py).
    hub.setdefault("unprinted_hold_s", 0)
    if always_open:
        text = demo.site.always_open(text)
    site_id = site_id or f"test-{next(_site_ids)}"  # the same in every xdist worker
    text = re.sub(r'(?m)^id = "mpp-banjarbaru"', f'id = "{site_id}"', text, count=1)
    text = re.sub(r"(?m)^port = 1883$", f"port = {port}", text, count=1)
    for key, value in hub.items():
        rendered = f'"{value}"' if isinstance(value, str | Path) else str(value).lower()
        if re.search(rf"(?m)^{key} = ", text):
            text = re.sub(rf"(?m)^({key}) = .*$", rf"\1 = {rendered}", text, count=1)
        else:
            text = text.replace("[hub]\n", f"[hub]\n{key} = {rendered}\n", 1)
    return text


def make_site(port: int = 1883, text: str | None = None, **kw) -> Site:
    """`site_text(...)` parsed into a Site."""
    return parse_site(site_text(port, text, **kw), "test-site.toml")


def write_site(path: Path, port: int = 1883, **kw) -> Path:
    """`site_text(...)` written to `path` (for processes started by a test)."""
    path.write_text(site_text(port, **kw), encoding="utf-8")
    return path


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
    """The example site on the session broker, open at any hour, database in tmp_path."""
    return make_site(broker.port, always_open=True, database=tmp_path / "hub.sqlite")


@pytest.fixture
def hub(site: Site) -> Iterator[HubService]:
    """A running hub for `site`: real SQLite file, real broker, real clock."""
    service = HubService(site, first_start=True).start()
    yield service
    service.stop()


@pytest.fixture
def bus_for(site: Site) -> Iterator[Callable[[str], Bus]]:
    """Factory: `bus_for("caller-03")` is a connected Bus of that inventory device."""
    made: list[Bus] = []

    def make(device: str) -> Bus:
        bus = Bus.for_device(site, device)
        made.append(bus)
        assert bus.start(wait=10), f"{device} could not connect to the test broker"
        return bus

    yield make
    for bus in made:
        bus.stop()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Slow tests first: spread over the xdist workers from the start, they no longer make a
    long tail after the quick ones are done (the order is the same in every worker)."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
