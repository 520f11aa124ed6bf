"""Packaging rules: parts import without hardware libraries; docs match the code."""

from __future__ import annotations

import subprocess
import sys

from click.testing import CliRunner

from protocol import docs
from protocol.cli import main
from tests.conftest import EXAMPLE, ROOT

HARDWARE = ("gpiozero", "pygame", "escpos", "pyttsx3", "RPLCD")


def test_parts_import_without_hardware_libraries() -> None:
    code = (
        "import sys, hub, kiosk, caller, display, provisioning, protocol.site, protocol.mqtt,"
        " protocol.messages, protocol.topics, protocol.cli;"
        f"print([m for m in {HARDWARE!r} if m in sys.modules])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_protocol_doc_is_generated_from_the_code() -> None:
    assert (ROOT / "docs" / "protocol.md").read_text() == docs.render(), (
        "docs/protocol.md is stale: run python -m protocol.docs > docs/protocol.md"
    )


def test_cli_validates_an_inventory(tmp_path) -> None:
    result = CliRunner().invoke(main, ["inventory", str(EXAMPLE)])
    assert result.exit_code == 0, result.output
    assert "30 counters" in result.output and "4 kiosks" in result.output
    bad = tmp_path / "bad.toml"
    bad.write_text(EXAMPLE.read_text().replace('prefix = "H"', 'prefix = "A"'))
    result = CliRunner().invoke(main, ["inventory", str(bad)])
    assert result.exit_code == 1
    assert "services.skck.prefix: 'A' is already used by services.ktp" in result.output


def test_the_protocol_doc_example_works_with_mosquitto_pub_alone(hub, site) -> None:
    """docs/protocol.md shows how to send a command with mosquitto_pub: it must just work."""
    import json
    import re
    import shutil

    doc = (ROOT / "docs" / "protocol.md").read_text()
    payload = re.search(r"-m '(\{.*?\})'", doc).group(1)
    topic = re.search(r"mosquitto_pub -q 1 -t '([^']+)'", doc).group(1)
    site_prefix = f"mpp/v1/{site.site.id}/"
    topic = topic.replace("mpp/v1/mpp-banjarbaru/", site_prefix)
    payload = payload.replace("mpp/v1/mpp-banjarbaru/", site_prefix)
    port = str(site.broker.port)
    reply_topic = json.loads(payload)["reply_to"]
    sub = subprocess.Popen(
        [
            shutil.which("mosquitto_sub") or "mosquitto_sub",
            "-p",
            port,
            "-t",
            reply_topic,
            "-C",
            "1",
            "-W",
            "10",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        import time

        time.sleep(0.5)  # the subscription is in place
        subprocess.run(
            ["mosquitto_pub", "-p", port, "-q", "1", "-t", topic, "-m", payload], check=True
        )
        reply = json.loads(sub.communicate(timeout=15)[0])
    finally:
        sub.kill()
        sub.wait()
    assert reply["request_id"] == "manual-0001"
    # A valid command, answered by the hub: counter 3 has no officer yet.
    assert reply["ok"] is False and reply["error"]["code"] == "counter_closed"
