"""`mpp display`: a real process on SDL's dummy drivers, against the test broker."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from protocol.brokers import Mosquitto
from protocol.cli import main
from tests.conftest import EXAMPLE, ROOT, example_text
from tests.display.conftest import png_pixels


def inventory(tmp_path: Path, port: int) -> Path:
    """The example inventory next to its images, on the test broker, with its own site id."""
    text = re.sub(
        r'(?m)^id = "mpp-banjarbaru"', f'id = "cli-{os.getpid()}"', example_text(), count=1
    )
    text = re.sub(r"(?m)^port = 1883$", f"port = {port}", text, count=1)
    path = tmp_path / "site.toml"
    path.write_text(text)
    (tmp_path / "umkm").symlink_to(EXAMPLE.parent / "umkm")
    return path


def test_unknown_or_wrong_device_is_a_clear_error() -> None:
    result = CliRunner().invoke(main, ["display", "--site", str(EXAMPLE), "--device", "tv-atap"])
    assert result.exit_code == 1
    assert "device 'tv-atap' is not in the inventory; displays: tv-entrance, tv-lobby-1" in (
        result.output
    )
    result = CliRunner().invoke(main, ["display", "--site", str(EXAMPLE), "--device", "caller-03"])
    assert result.exit_code == 1 and "is a caller, not a display" in result.output
    assert "Show the queue on this TV" in CliRunner().invoke(main, ["display", "--help"]).output


def test_display_process_draws_the_entrance_and_stops(broker: Mosquitto, tmp_path: Path) -> None:
    site_file = inventory(tmp_path, broker.port)
    shot = tmp_path / "entrance.png"
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy"}
    code = "from protocol.cli import main; main()"
    args = ["display", "--site", str(site_file), "--device", "tv-entrance", "--run-for", "2",
            "--screenshot", str(shot), "--cache-dir", str(tmp_path / "cache")]  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-c", code, *args], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "first frame drawn" in done.stderr and "connected to broker" in done.stderr
    assert "featured image missing" not in done.stderr  # found next to the inventory
    image = png_pixels(shot)
    assert image.size == (1920, 1080)
    assert len(image.getcolors(1_000_000)) > 200  # the slideshow's picture is on it
