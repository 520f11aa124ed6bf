"""A missing, empty or damaged database (issue 23, item 3): the hub never starts a new queue on
its own and never writes a damaged database.

- Bit flips: a real hub database of 400 tickets, one bit flipped per variant (file header,
  b-tree page headers, cell pointers, cell contents, index pages). Invariant: the hub starts
  only on a copy that passes `PRAGMA quick_check`; it refuses every other one with a message
  that says how to restore, and the file is byte for byte as before.
- An unmounted disk: the database's disk is unmounted (the mount point stays, empty). The hub
  process exits 1 saying what to check, and creates nothing.
- Damaged while running: the schema is broken through SQLite itself while the hub runs. The
  command that meets it gets `storage_error` with its request id; the hub process exits 1
  (systemd restarts it); the restart refuses the damaged file, saying how to restore.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from pathlib import Path

import pytest

from hub.service import HubService
from hub.store import DatabaseDamaged, DatabaseMissing
from protocol import messages as m
from protocol.site import Site, parse_site
from tests.chaos.conftest import CommandTap, HubProcess, SmallDisk
from tests.conftest import site_text, write_site
from tests.timing import wait_until

TICKETS = 400
PAGE_TYPES = {
    0x0D: "table leaf",
    0x05: "table interior",
    0x0A: "index leaf",
    0x02: "index interior",
}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def check(path: Path, pragma: str = "quick_check") -> str:
    """PRAGMA quick_check (or integrity_check) of a file, read-only ('ok' when sound)."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            return "; ".join(row[0] for row in conn.execute(f"PRAGMA {pragma}"))
        finally:
            conn.close()
    except sqlite3.Error as exc:
        return f"error: {exc}"


def flips(data: bytes) -> list[tuple[str, int, int]]:
    """(variant, byte offset, bit) of each bit flip: the file header, and for each b-tree page
    type its first page and its first page past the middle of the file (the tickets, events
    and requests live there), each in its type byte, cell count, first cell pointer and first
    cell."""
    variants = [
        ("header: magic string", 0, 0),
        ("header: page size", 16, 1),
        ("header: file format (WAL flag)", 18, 0),
        ("header: database size in pages", 31, 2),
        ("header: schema format", 47, 0),
    ]
    page_size = int.from_bytes(data[16:18], "big")
    pages = len(data) // page_size
    for kind, kind_name in PAGE_TYPES.items():
        for first in (1, pages // 2):
            page = next((p for p in range(first, pages + 1) if _page_type(data, p) == kind), None)
            if page is None:
                continue
            start = (page - 1) * page_size + (100 if page == 1 else 0)
            pointers = start + (12 if kind in (0x02, 0x05) else 8)  # after the page header
            cell = (page - 1) * page_size + int.from_bytes(data[pointers : pointers + 2], "big")
            name = f"{kind_name} page {page}"
            variants += [
                (f"{name}: page type", start, 3),
                (f"{name}: cell count", start + 4, 0),
                (f"{name}: first cell pointer", pointers, 4),
                (f"{name}: first cell", cell + 2, 5),
            ]
    return variants


def _page_type(data: bytes, page: int) -> int:
    page_size = int.from_bytes(data[16:18], "big")
    return data[(page - 1) * page_size + (100 if page == 1 else 0)]


def filled_database(site: Site) -> Path:
    """A hub database holding TICKETS tickets, closed cleanly (WAL checkpointed)."""
    hub = HubService(site, first_start=True).start(wait_connected=None)
    try:
        for i in range(TICKETS):
            service = ("ktp", "kk")[i % 2]
            assert hub.submit(m.IssueTicket(device="hub", service=service)).ok
    finally:
        hub.stop()
    return Path(site.hub.database)


@pytest.mark.chaos
def test_the_hub_starts_only_on_a_database_that_passes_quick_check(broker, tmp_path: Path) -> None:
    text = site_text(broker.port, always_open=True, database=tmp_path / "good.sqlite")
    site = parse_site(re.sub(r"(?m)^daily_quota = \d+$", "daily_quota = 999", text))
    data = filled_database(site).read_bytes()
    outcomes: list[str] = []
    for name, offset, bit in flips(data):
        copy = tmp_path / "flipped.sqlite"
        for leftover in tmp_path.glob("flipped.sqlite*"):
            leftover.unlink()
        flipped = bytearray(data)
        flipped[offset] ^= 1 << bit
        copy.write_bytes(bytes(flipped))
        quick = check(copy)
        hub = HubService(site, database=copy)
        try:
            hub.start(wait_connected=None)
        except DatabaseDamaged as exc:
            # Refused: really damaged (what quick_check misses, integrity_check finds), told
            # how to restore, and not written.
            assert quick != "ok" or check(copy, "integrity_check") != "ok", name
            assert "backup" in str(exc) and "docs/reliability.md" in str(exc), exc
            assert copy.read_bytes() == flipped, f"{name}: the refused database was written"
            outcomes.append(f"refused: {name} ({quick[:60]!r})")
            continue
        try:
            assert quick == "ok", f"{name}: the hub started on a database failing quick_check"
            reply = hub.submit(m.IssueTicket(device="hub", service="ktp"))
            # It works on it, or refuses to write (a flipped header can make the file
            # read-only): it never confirms what it did not store.
            code = "ok" if reply.ok else reply.error.code  # type: ignore[union-attr]
            assert code in ("ok", "storage_error"), (name, reply)
            outcomes.append(f"started: {name} (issue: {code})")
        finally:
            hub.stop()
        assert check(copy) == "ok", name
    print(f"{len(outcomes)} bit-flip variants:", *outcomes, sep="\n  ")
    refused = [o for o in outcomes if o.startswith("refused")]
    assert len(refused) >= len(outcomes) - 3  # the check has teeth: nearly every flip is caught


@pytest.mark.chaos
def test_an_unmounted_disk_is_not_taken_for_a_new_site(
    small_disk: SmallDisk, broker, tmp_path: Path
) -> None:
    database = small_disk.path / "hub.sqlite"
    site_file = write_site(tmp_path / "site.toml", broker.port, always_open=True, database=database)
    site = parse_site(site_file.read_text(), str(site_file))
    filled = HubService(site, first_start=True).start(wait_connected=None)
    assert filled.submit(m.IssueTicket(device="hub", service="ktp")).ok
    filled.stop()
    small_disk.unmount()  # the mount point stays: an empty directory
    assert not database.exists()
    hub = HubProcess(site_file, tmp_path / "hub.log", first_start=False).start()
    assert hub.proc is not None
    assert hub.proc.wait(30) == 1
    log = hub.log_text()
    assert "missing" in log and "mounted" in log and "--first-start" in log, log
    assert list(small_disk.path.iterdir()) == []  # nothing created
    with pytest.raises(DatabaseMissing):
        HubService(site).start(wait_connected=None)
    assert list(small_disk.path.iterdir()) == []


@pytest.mark.chaos
def test_a_database_damaged_while_running_stops_the_hub(broker, tmp_path: Path) -> None:
    database = tmp_path / "hub.sqlite"
    site_file = write_site(tmp_path / "site.toml", broker.port, always_open=True, database=database)
    site = parse_site(site_file.read_text(), str(site_file))
    hub = HubProcess(site_file, tmp_path / "hub.log").start()
    tap = CommandTap(site).start()
    try:
        assert wait_until(lambda: tap.ask("kiosk-1", "issue", b"?", timeout=0.5), 30)
        payload = {"v": 1, "device": "kiosk-1", "service": "ktp"}
        first = tap.ask(
            "kiosk-1", "issue", json.dumps(payload | {"request_id": "first-0001"}).encode()
        )
        assert first is not None and first.reply.ok
        # Broken through SQLite itself (as a bad sector under an index would be found): the
        # hub's next statement reads the schema again and meets it.
        conn = sqlite3.connect(database)
        conn.execute("PRAGMA writable_schema=ON")
        version = conn.execute("PRAGMA schema_version").fetchone()[0]
        conn.execute("UPDATE sqlite_master SET rootpage = 99999 WHERE name = 'tickets_day'")
        conn.execute(f"PRAGMA schema_version={version + 1}")
        conn.commit()
        conn.close()
        answer = tap.ask(
            "kiosk-1", "issue", json.dumps(payload | {"request_id": "second-0002"}).encode()
        )
        assert answer is not None
        assert answer.reply.request_id == "second-0002"
        assert answer.reply.error is not None and answer.reply.error.code == "storage_error"
        assert hub.proc is not None
        assert hub.proc.wait(15) == 1, "the hub went on with a damaged database"
        assert "damaged" in hub.log_text()
        hub.start()
        assert hub.proc.wait(30) == 1
        assert "backup" in hub.log_text().rsplit("hub database damaged", 1)[-1]
    finally:
        tap.stop()
        hub.stop()
