"""`mpp web --add-user` makes the first account in the web's own database; `mpp web` then
serves the login beside a running hub (`mpp hub` serves no HTTP at all)."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

from hub.service import HubService
from protocol.brokers import free_port
from protocol.site import load_site
from tests.conftest import ROOT, write_site
from tests.timing import wait_until
from web.users import UserStore


def mpp(*args: str, **kw) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "protocol.cli", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False, **kw,
    )  # fmt: skip


def test_add_user_then_log_in_on_mpp_web(broker, tmp_path: Path) -> None:
    port = free_port()
    site_file = write_site(tmp_path / "site.toml", broker.port, database=tmp_path / "hub.sqlite")
    site_file.write_text(site_file.read_text().replace("port = 8080 ", f"port = {port} ", 1))
    made = mpp(
        "web", "--site", str(site_file), "--add-user", "kepala", "--role", "supervisor",
        input="Kepala MPP\nrahasia-123\nrahasia-123\n",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert "account kepala (supervisor) created" in made.stdout
    users = UserStore(tmp_path / "mpp-web.sqlite")  # beside the hub's database by default
    assert users.check("kepala", "rahasia-123") is not None
    users.close()
    hub_help = mpp("hub", "--help").stdout
    assert "--add-user" not in hub_help and "--no-web" not in hub_help
    hub = HubService(load_site(site_file), first_start=True).start()
    process = subprocess.Popen(
        [sys.executable, "-m", "protocol.cli", "web", "--site", str(site_file)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:

        def ready() -> bool:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                    return json.load(r)["ok"] is True
            except OSError:
                return False

        up = wait_until(ready, 30)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=5) as page:
            body = page.read().decode()
            server = page.headers.get("Server")
    finally:
        process.terminate()
        output = process.communicate(timeout=20)[0]
        hub.stop()
    assert up, output
    assert "Masuk petugas" in body
    assert server is None  # no server name or version to fingerprint
    assert process.returncode == 0, output


def test_bad_user_is_refused_clearly(broker, tmp_path: Path) -> None:
    site_file = write_site(tmp_path / "site.toml", broker.port, database=tmp_path / "hub.sqlite")
    made = mpp(
        "web", "--site", str(site_file), "--add-user", "Bad Name!", input="x\nshort\nshort\n"
    )
    assert made.returncode != 0
    assert "username" in made.stderr
