"""Daily backup copies of the hub database, made with SQLite's backup API off the command path.

The hub's upkeep thread (hub.store) starts `DailyBackup.run` in a thread of its own when there
is no copy of today (local date) yet: one copy a day, made a minute after the hub's start and
after midnight (holding the whole previous day). Each copy gets the full `PRAGMA integrity_check`
(too slow for every start, which runs quick_check): a copy failing it is kept aside as
`*.damaged`, the older copies are kept, and `damaged` says what was found (the hub raises an
alert). The newest KEEP good copies are kept.

    backups/mpp-hub-2026-12-07.sqlite      restore: docs/reliability.md
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from pathlib import Path

log = logging.getLogger("mpp.hub")
KEEP = 3  # daily copies kept
RETRY_S = 3600.0  # after a failed copy (a full disk...)


def copies(database: Path, backups: Path) -> list[Path]:
    """The good backup copies of `database` in `backups`, oldest first."""
    if not backups.is_dir():
        return []
    return sorted(backups.glob(f"{database.stem}-????-??-??.sqlite"))


class DailyBackup:
    """One copy of the database a day, in `backups` (the newest KEEP kept)."""

    def __init__(self, database: Path, backups: Path) -> None:
        self.database = database
        self.backups = backups
        self.damaged: str | None = None  # what the integrity check of a copy found
        self._retry_at = 0.0  # time.monotonic() after a failure

    def due(self) -> Path | None:
        """Where today's copy goes when it is not made yet (None: made, or retry later)."""
        target = self.backups / f"{self.database.stem}-{time.strftime('%Y-%m-%d')}.sqlite"
        if target.exists() or time.monotonic() < self._retry_at:
            return None
        return target

    def run(self) -> Path | None:
        """Make today's copy if due; the new copy, or None (not due, or failed: logged and
        tried again an hour later)."""
        target = self.due()
        if target is None:
            return None
        extra = {"database": str(self.database), "backup": str(target)}
        try:
            problems = copy(self.database, target)
        except (OSError, sqlite3.Error) as exc:
            self._retry_at = time.monotonic() + RETRY_S
            log.error(
                "daily backup of the hub database failed; tried again in an hour",
                extra={**extra, "error": str(exc)},
            )
            return None
        if problems:
            self._retry_at = time.monotonic() + RETRY_S
            self.damaged = problems
            log.critical(
                "the hub database fails SQLite's integrity check; the older backups are kept",
                extra={**extra, "problems": problems},
            )
            return None
        for old in copies(self.database, self.backups)[:-KEEP]:
            old.unlink(missing_ok=True)
        log.info("daily backup made", extra=extra)
        return target


def copy(database: Path, target: Path) -> str:
    """A consistent copy of `database` at `target`, checked before it is renamed into place;
    '' when sound, else what `PRAGMA integrity_check` found (the copy is then `*.damaged`)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    source = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=10)
    try:
        dest = sqlite3.connect(partial)
        try:
            # One step (pages=-1): a copy made in several steps starts again after every
            # commit of the hub's, so under load it would never end.
            source.backup(dest)
            problems = [row[0] for row in dest.execute("PRAGMA integrity_check")]
            dest.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
        finally:
            dest.close()
        _fsync(partial)
        if problems != ["ok"]:
            os.replace(partial, target.with_name(target.name + ".damaged"))
            return "; ".join(problems[:5])
        os.replace(partial, target)
        _fsync(target.parent)
        return ""
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finally:
        source.close()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
