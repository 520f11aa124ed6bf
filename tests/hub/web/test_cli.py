"""`mpp hub` serves the web app in the same process; `--add-user` makes the first account."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from protocol.brokers import free_port
from tests.conftest import ROOT, write_site


def test_hub_serves_the_web_app(broker, tmp_path: Path) -> None:
    port = free_port()
    db = tmp_path / "hub.sqlite"
    site_file = write_site(tmp_path / "site.toml", broker.port, always_open=True, database=db)
    site_file.write_text(site_file.read_text().replace("port = 8080 ", f"port = {port} ", 1))
    made = subprocess.run(
        [
            sys.executable,
            "-m",
            "protocol.cli",
            "hub",
            "--site",
            str(site_file),
            "--first-start",
            "--add-user",
            "kepala",
            "--role",
            "supervisor",
        ],
        cwd=ROOT,
        input="Kepala MPP\nrahasia-123\nrahasia-123\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    assert "account kepala (supervisor) created" in made.stdout
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "protocol.cli",
            "hub",
            "--site",
            str(site_file),
            "--log-level",
            "WARNING",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        body = ""
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=2) as page:
                    body = page.read().decode()
                break
            except OSError:
                time.sleep(0.1)
        assert "Masuk petugas" in body
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as page:
            assert b'"ok":true' in page.read()
    finally:
        process.terminate()
        output = process.communicate(timeout=20)[0].decode()
    assert process.returncode == 0, output


def test_bad_user_is_refused_clearly(broker, tmp_path: Path) -> None:
    site_file = write_site(tmp_path / "site.toml", broker.port, database=tmp_path / "hub.sqlite")
    made = subprocess.run(
        [
            sys.executable,
            "-m",
            "protocol.cli",
            "hub",
            "--site",
            str(site_file),
            "--first-start",
            "--add-user",
            "Bad Name!",
        ],
        cwd=ROOT,
        input="x\nshort\nshort\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert made.returncode != 0
    assert "username" in made.stderr
