"""Device presence changes as events of the hub's log (so they reach the region's fleet view).

Only a change is recorded: a device going online or offline, or its printer's state changing.
The retained statuses the hub receives again after every restart or reconnect change nothing.

    log = PresenceLog.load(store.conn)
    detail = log.change(status)      # 'kiosk-1 offline printer=paper_out', or None
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field

from protocol import messages as m

RECENT = 5000  # presence events read back at start (the latest of each device is among them)


def presence_detail(status: m.DeviceStatus) -> str:
    """'<device> online|offline[ printer=<state>]': the event's detail."""
    detail = f"{status.device} {'online' if status.online else 'offline'}"
    printer = status.health.printer
    if printer is not None and printer != "ok":
        detail += f" printer={printer}"
    return detail


@dataclass
class PresenceLog:
    """The last recorded presence of every device."""

    last: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, conn: sqlite3.Connection) -> PresenceLog:
        """The latest presence event of each device in the database."""
        rows = conn.execute(
            "SELECT detail FROM events WHERE kind = 'presence' ORDER BY id DESC LIMIT ?",
            (RECENT,),
        ).fetchall()
        last: dict[str, str] = {}
        for (detail,) in rows:
            last.setdefault(str(detail).split(" ", 1)[0], detail)
        return cls(last)

    def change(self, status: m.DeviceStatus) -> str | None:
        """The detail to record when `status` differs from the last recorded, else None."""
        detail = presence_detail(status)
        if self.last.get(status.device) == detail:
            return None
        self.last[status.device] = detail
        return detail
