"""Hub soak: sustained issue -> call -> finish cycles; does the WAL stay bounded and the
throughput hold? Then the hub is killed (SIGKILL) and restarted: how long until it answers?

Real parts: Mosquitto on loopback, the hub service on a real SQLite file in a process of its
own (so it can be killed), commands through `HubService.submit` from THREADS threads (they
share group commits, as devices' commands do). A cycle is one ticket issued, called and
finished at one counter; each thread has its own counter and service. The hub's clock runs a
day ahead every DAY_CYCLES cycles (the daily quota of 999 numbers a service would run out).

    .venv/bin/python bench/hub_soak.py [--cycles 100000] [--threads 4]

Prints the WAL's peak size, the database size, cycles/s over the first and the last tenth of
the cycles, and the time from SIGKILL to the first answered command after a restart.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import machine, site_text  # noqa: E402
from bench.figures import figure  # noqa: E402
from protocol import messages as m  # noqa: E402
from protocol.brokers import Mosquitto  # noqa: E402
from protocol.site import Site, parse_site  # noqa: E402

DAY_CYCLES = 900  # per thread: below its service's quota of 999
DAY_S = 86400.0
REPORT_EVERY = 1000  # cycles between progress reports from the hub's process


def lanes(site: Site, threads: int) -> list[tuple[int, str]]:
    """(counter, service) per thread: counters that share no service, so a NEXT always finds
    its own thread's ticket."""
    chosen: list[tuple[int, str]] = []
    taken: set[str] = set()
    for number, counter in sorted(site.counters.items()):
        if not taken & set(counter.services):
            chosen.append((number, counter.services[0]))
            taken |= set(counter.services)
        if len(chosen) == threads:
            return chosen
    raise SystemExit(f"only {len(chosen)} counters share no service; use --threads {len(chosen)}")


def soak(text: str, cycles: int, threads: int, out: mp.Queue) -> None:
    """The hub's process: run the cycles, report progress, then keep the hub up until killed."""
    from hub.service import HubService

    site = parse_site(text)
    days = [0]
    hub = HubService(site, clock=lambda: time.time() + days[0] * DAY_S, first_start=True).start()
    done = [0]
    lock = threading.Lock()
    # Every DAY_CYCLES cycles of each thread, all meet and the clock moves to the next day
    # (no cycle straddles midnight: its ticket would expire before its call).
    next_day = threading.Barrier(threads, action=lambda: days.__setitem__(0, days[0] + 1))

    def worker(counter: int, service: str, count: int) -> None:
        ask = hub.submit
        for i in range(count):
            if i % DAY_CYCLES == 0:
                if i:
                    next_day.wait()
                # Counters open for the day (a new day closes nothing, but be sure).
                ask(m.OpenCounter(device="hub", counter=counter, officer=f"o{counter}"))
            for command in (
                m.IssueTicket(device="hub", service=service),
                m.CallNext(device="hub", counter=counter),
                m.Finish(device="hub", counter=counter),
            ):
                reply = ask(command, timeout=60)
                assert reply.ok, (command, reply.error)
            with lock:
                done[0] += 1
                if done[0] % REPORT_EVERY == 0:
                    out.put(("progress", done[0], time.monotonic()))

    out.put(("started", 0, time.monotonic()))
    pool = [
        threading.Thread(target=worker, args=(counter, service, cycles // threads))
        for counter, service in lanes(site, threads)
    ]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    out.put(("done", done[0], time.monotonic()))
    time.sleep(3600)  # killed by the parent (as a power cut would), never stopped cleanly


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=100_000)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
    print(machine())
    with tempfile.TemporaryDirectory(prefix="mpp-soak-") as tmp, Mosquitto() as broker:
        database = Path(tmp) / "hub.sqlite"
        wal = Path(tmp) / "hub.sqlite-wal"
        text = site_text(broker.port, database, "soak")
        out: mp.Queue = mp.get_context("spawn").Queue()
        child = mp.get_context("spawn").Process(
            target=soak, args=(text, args.cycles, args.threads, out)
        )
        child.start()
        progress: list[tuple[int, float]] = []
        wal_peak = 0
        finished = False
        deadline = time.monotonic() + 3600
        while not finished and time.monotonic() < deadline and child.is_alive():
            wal_peak = max(wal_peak, wal.stat().st_size if wal.exists() else 0)
            while not out.empty():
                kind, count, at = out.get()
                if kind != "done":
                    progress.append((count, at))
                finished = kind == "done"
            time.sleep(0.2)
        wal_peak = max(wal_peak, wal.stat().st_size if wal.exists() else 0)
        assert finished, "the soak did not finish within an hour"
        os.kill(child.pid, signal.SIGKILL)  # type: ignore[arg-type]
        child.join(10)
        wal_at_kill = wal.stat().st_size if wal.exists() else 0
        cycles = progress[-1][0]
        tenth = max(1, round((len(progress) - 1) / 10))  # reports in a tenth of the cycles
        first = (progress[tenth][0] - progress[0][0]) / (progress[tenth][1] - progress[0][1])
        last = (progress[-1][0] - progress[-1 - tenth][0]) / (
            progress[-1][1] - progress[-1 - tenth][1]
        )
        print(f"cycles: {cycles} (issue + call + finish; {args.threads} threads)")
        print(f"WAL peak: {wal_peak / 1e6:.1f} MB; at the kill: {wal_at_kill / 1e6:.1f} MB")
        print(f"database: {database.stat().st_size / 1e6:.1f} MB")
        print(f"cycles/s: first tenth {first:.0f}, last tenth {last:.0f} ({last / first:.2f} x)")
        figure("hub soak: WAL peak", round(wal_peak / 1e6, 1), "MB", target="< 64")
        figure("hub soak: cycles/s, first tenth", round(first), "/s")
        figure("hub soak: cycles/s, last tenth", round(last), "/s", target=">= 0.8 x first")
        print(f"restart after SIGKILL to the first answered command: {restart(text):.2f} s")


def restart(text: str) -> float:
    """Seconds from opening the killed hub's database to its first answered command."""
    from hub.service import HubService

    site = parse_site(text)
    started = time.monotonic()
    # Its clock ran days ahead in the soak: trust it as if NTP said so (not the subject here).
    hub = HubService(site, clock_synced=lambda: True).start()
    try:
        reply = hub.submit(m.IssueTicket(device="hub", service=lanes(site, 1)[0][1]))
    finally:
        hub.stop()
    seconds = time.monotonic() - started
    assert reply.ok, reply.error
    figure("hub soak: restart after SIGKILL", round(seconds, 2), "s")
    return seconds


if __name__ == "__main__":
    main()
