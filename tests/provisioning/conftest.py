"""A provisioned example site: secrets, broker files from the CLI, and its real Mosquitto."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from broker_config.local import hand_to_mosquitto, site_broker
from protocol.brokers import Mosquitto, free_port
from protocol.site import Site, load_site
from provisioning.cli import main
from provisioning.site_secrets import SiteSecrets
from provisioning.wheelhouse import Software, Target, package_wheel, this_machine
from tests.conftest import example_text

SERVER = "mpp-server.local"
# Downloaded wheels are kept between runs (the first run fetches a few MB per role).
WHEEL_CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mpp-tests"


@pytest.fixture(scope="session")
def here() -> Target:
    """This machine as a bundle's target (as `--target here` makes it)."""
    return this_machine()


@pytest.fixture(scope="session")
def software(tmp_path_factory: pytest.TempPathFactory) -> Software:
    """This tree's wheel (built once a session) and a pool of wheels kept between runs."""
    package = package_wheel(tmp_path_factory.mktemp("package"))
    return Software(package, WHEEL_CACHE / "wheels")


def site_text(site_id: str) -> str:
    """The example inventory under another site id (isolates retained topics)."""
    return re.sub(r'(?m)^id = "mpp-banjarbaru"', f'id = "{site_id}"', example_text(), count=1)


@dataclass
class Provisioned:
    """The example site after `init` and `broker`, its broker running from those files."""

    top: Path
    site_file: Path
    secrets: Path
    broker_dir: Path
    loopback_port: int
    device_port: int
    broker: Mosquitto | None = None

    def run(self, *args: str) -> Result:
        """Run `mpp-provision --site ... --secrets ... ARGS` in this process."""
        return CliRunner().invoke(
            main, ["--site", str(self.site_file), "--secrets", str(self.secrets), *args]
        )

    @property
    def site(self) -> Site:
        """The inventory as it is now."""
        return load_site(self.site_file)

    @property
    def store(self) -> SiteSecrets:
        """The secrets as they are now."""
        return SiteSecrets.open(self.secrets)

    def reload(self) -> None:
        """Hand rewritten files to the broker and SIGHUP it, as the technician would."""
        hand_to_mosquitto(self.broker_dir)
        assert self.broker is not None
        self.broker.reload()


def provision(top: Path, site_id: str) -> Provisioned:
    """init + broker through the CLI, into a directory the mosquitto user can read."""
    top.mkdir(parents=True, exist_ok=True)
    top.chmod(0o755)
    site_file = top / "site.toml"
    site_file.write_text(site_text(site_id))
    p = Provisioned(top, site_file, top / "secrets", top / "broker", free_port(), free_port())
    result = p.run("init", "--server", SERVER)
    assert result.exit_code == 0, result.output
    result = p.run(
        "broker",
        "--out", str(p.broker_dir),
        "--etc", str(p.broker_dir),
        "--data-dir", str(top / "data"),
        "--log-dest", "stderr",
        "--loopback-port", str(p.loopback_port),
        "--device-port", str(p.device_port),
        "--device-bind", "127.0.0.1",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    hand_to_mosquitto(p.broker_dir, top / "data")
    return p


@pytest.fixture(scope="module")
def provisioned(request: pytest.FixtureRequest) -> Iterator[Provisioned]:
    """A provisioned site with its broker running, shared by a test module."""
    top = Path(tempfile.mkdtemp(prefix="mpp-provision-test-"))
    name = re.sub(r"[^a-z0-9]+", "-", request.module.__name__.rsplit(".", 1)[-1].lower())
    p = provision(top, f"prov-{name}"[:40].strip("-"))
    with site_broker(p.broker_dir, p.loopback_port) as broker:
        p.broker = broker
        yield p
    shutil.rmtree(top, ignore_errors=True)


@pytest.fixture
def fresh() -> Iterator[Provisioned]:
    """A provisioned site of this test alone, broker not started."""
    top = Path(tempfile.mkdtemp(prefix="mpp-provision-fresh-"))
    yield provision(top, "prov-fresh")
    shutil.rmtree(top, ignore_errors=True)
