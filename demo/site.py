"""The inventory a demo runs on: the example MPP, open at any hour, on this machine.

text = demo_inventory(example_text, workdir, broker_port=1883, mqtt_version=5, web_port=8080)
"""

from __future__ import annotations

import re
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "banjarbaru.toml"


def always_open(text: str, pauses: bool = False) -> str:
    """Every day 00:00-24:00 and no cut-offs, so a demo or a test works at any hour; the
    pauses (e.g. Friday prayer) are kept only if `pauses`."""
    text = re.sub(r'(?m)^(mon|tue|wed|thu|fri|sat) = ".*"$', r'\1 = "00:00-24:00"', text)
    text = text.replace("# sun: closed", 'sun = "00:00-24:00"')
    if not pauses:
        text = without_pauses(text)
    return re.sub(r'(?m)^cutoff = ".*"\n', "", text)


def without_pauses(text: str) -> str:
    """The inventory without its [pauses.ID] tables."""
    return re.sub(r"(?ms)^\[pauses\.[^\]]+\][^\n]*\n.*?(?=^\[|\Z)", "", text)


def local_inventory(
    text: str,
    *,
    port: int,
    database: Path | str,
    site_id: str | None = None,
    mqtt_version: int | None = None,
    quota: int | None = None,
    unprinted_hold_s: float | None = None,
    pauses: bool = False,
) -> str:
    """An inventory rewired to run on this machine, open around the clock: broker port (and
    version), database file, optionally its own site id, every service's daily quota and the
    hold on unprinted kiosk tickets (0 where load generators issue without printing); its
    pauses kept only if `pauses`."""
    text = always_open(text, pauses=pauses)
    text = re.sub(r"(?m)^port = 1883$", f"port = {port}", text, count=1)
    text = re.sub(r'(?m)^database = ".*"$', f'database = "{database}"', text, count=1)
    if site_id is not None:
        text = re.sub(r'(?m)^id = "mpp-banjarbaru"', f'id = "{site_id}"', text, count=1)
    if mqtt_version is not None:
        text = re.sub(r"(?m)^mqtt_version = 5$", f"mqtt_version = {mqtt_version}", text, count=1)
    if quota is not None:
        text = re.sub(r"(?m)^daily_quota = \d+$", f"daily_quota = {quota}", text)
    if unprinted_hold_s is not None:
        text = text.replace("[hub]\n", f"[hub]\nunprinted_hold_s = {unprinted_hold_s}\n", 1)
    return text


def demo_inventory(
    text: str, workdir: Path, *, broker_port: int, mqtt_version: int, web_port: int
) -> str:
    """The example inventory rewired for a demo in `workdir`: local broker and hub, kiosk
    printers writing files into workdir/tickets; its pauses (Friday prayer) kept."""
    text = local_inventory(
        text,
        port=broker_port,
        database=workdir / "hub.sqlite",
        mqtt_version=mqtt_version,
        pauses=True,
    )
    text = re.sub(r"(?m)^port = 8080 ", f"port = {web_port} ", text, count=1)
    text = re.sub(
        r'(?m)^public_url = ".*?"', f'public_url = "http://127.0.0.1:{web_port}"', text, count=1
    )
    tickets = workdir / "tickets"
    # Each kiosk's printer line becomes a file printer named after the kiosk.
    out, device = [], None
    for line in text.splitlines():
        header = re.match(r"^\[devices\.([a-z0-9_-]+)\]$", line)
        if header:
            device = header.group(1)
        if line.startswith("printer = ") and device:
            path = tickets / f"{device}.escpos"
            out.append(f'printer = {{ connection = "file", path = "{path}", profile = "TM-T20II"}}')
        else:
            out.append(line)
    return "\n".join(out) + "\n"
