"""What the benchmarks share: percentiles, report lines, the example site on a local broker."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

from demo.site import EXAMPLE, local_inventory


def pct(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank); NaN for no values."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] if ordered else float("nan")


def line(label: str, values: list[float]) -> str:
    """'label: n=.. p50=.. ms p99=.. ms max=.. ms' from durations in seconds."""
    ms = [v * 1000 for v in values]
    return (
        f"{label}: n={len(ms)} p50={pct(ms, 50):.2f} ms p99={pct(ms, 99):.2f} ms "
        f"max={max(ms):.2f} ms"
    )


def site_text(port: int, database: Path, name: str) -> str:
    """The example inventory, open around the clock, quotas raised, on this broker."""
    return local_inventory(
        EXAMPLE.read_text(encoding="utf-8"),
        port=port,
        database=database,
        site_id=f"bench-{name}-{os.getpid()}",
        quota=999,
        unprinted_hold_s=0,  # the benchmarks' tickets come from load generators, not printers
    )


def machine() -> str:
    """The machine line every benchmark prints."""
    return (
        f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}; "
        f"load average {os.getloadavg()[0]:.2f}; {time.strftime('%Y-%m-%d %H:%M')}"
    )


def cpu_seconds(*pids: int, children: bool = True) -> float:
    """CPU time (user + system, s) used so far by these processes and (`children`) their
    descendants, the reaped ones included: the figure a loaded machine does not distort the
    way it distorts wall time. A process that is gone counts 0."""
    tick = os.sysconf("SC_CLK_TCK")
    stats: dict[int, list[str]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                text = (entry / "stat").read_text()
            except OSError:
                continue
            stats[int(entry.name)] = text[text.rindex(")") + 2 :].split()
    parents = {pid: int(fields[1]) for pid, fields in stats.items()}
    total = 0
    for pid, fields in stats.items():
        ancestor, seen = pid, 0
        while children and ancestor not in pids and ancestor > 1 and seen < 64:
            ancestor, seen = parents.get(ancestor, 0), seen + 1
        if ancestor in pids:
            utime, stime, cutime, cstime = (int(fields[i]) for i in (11, 12, 13, 14))
            total += utime + stime + (cutime + cstime if pid in pids and children else 0)
    return total / tick
