"""Hub throughput and latency through a real Mosquitto, with the hub in its own process.

Prints: the raw SQLite commit rate of this disk (WAL, synchronous=FULL), durable tickets/s
with K concurrent kiosks (each a process), command->reply p50/p99, duplicates found, and
call->retained-state-received p50/p99 with C counters and S subscribed screens.

    .venv/bin/python bench/hub_bench.py [--tickets 5000] [--kiosks 16] [--calls 2000]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import pct  # noqa: E402
from bench.figures import figure  # noqa: E402
from protocol import messages as m  # noqa: E402
from protocol.brokers import Mosquitto  # noqa: E402
from protocol.mqtt import Bus  # noqa: E402
from protocol.site import parse_site  # noqa: E402
from protocol.synthetic import synthetic_site  # noqa: E402
from protocol.topics import Topics  # noqa: E402


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def raw_commit_rate(directory: Path, commits: int = 2000) -> float:
    path = directory / "raw.sqlite"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE t (x INTEGER)")
    started = time.perf_counter()
    for i in range(commits):
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO t VALUES (?)", (i,))
        conn.execute("COMMIT")
    rate = commits / (time.perf_counter() - started)
    conn.close()
    return rate


def kiosk_worker(
    text: str, device: str, count: int, services: list[str], threads: int, out: mp.Queue
) -> None:
    """One kiosk process; `threads` presses in flight at once (several buttons, one client)."""
    site = parse_site(text)
    bus = Bus.for_device(site, device)
    bus.start(wait=10)
    latencies, numbers = [], []

    def press(n: int) -> None:
        for i in range(n):
            command = m.IssueTicket(device=device, service=services[i % len(services)])
            started = time.perf_counter()
            result = bus.request(command, timeout=10, retries=2)
            latencies.append(time.perf_counter() - started)
            numbers.append((result["ticket"]["service"], result["ticket"]["number"]))

    workers = [threading.Thread(target=press, args=(count // threads,)) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    bus.stop()
    out.put((latencies, numbers))


def caller_worker(
    text: str, counters: list[int], calls: int, pace_s: float, seed: int, out: mp.Queue
) -> None:
    """Officers pressing NEXT at random moments (Poisson arrivals, `pace_s` apart on average;
    the callers together make a Poisson stream at the total rate), seeded for repeatability."""
    rng = random.Random(seed)
    site = parse_site(text)
    buses = {n: Bus.for_device(site, f"caller-{n:03d}") for n in counters}
    for bus in buses.values():
        bus.start(wait=10)
    for n, bus in buses.items():
        bus.request(m.OpenCounter(device=bus.device, counter=n, officer=f"o{n}"), timeout=10)
    sent: dict[tuple[int, int], float] = {}
    latencies = []
    next_at = time.time()
    for i in range(calls):
        time.sleep(max(0.0, next_at - time.time()))
        next_at += rng.expovariate(1 / pace_s)
        n = counters[i % len(counters)]
        bus = buses[n]
        started = time.time()
        try:
            result = bus.request(m.CallNext(device=bus.device, counter=n), timeout=10)
        except Exception:  # queue_empty when a counter ran dry: not a call
            continue
        latencies.append(time.time() - started)
        sent[(n, result["counter"]["call_seq"])] = started
    for bus in buses.values():
        bus.stop()
    out.put((sent, latencies))


def screen_worker(text: str, devices: list[str], done, ready: mp.Queue, out: mp.Queue) -> None:
    """Screens in one process: note when each counter state arrives; decode afterwards."""
    site = parse_site(text)
    arrivals: list[tuple[int, float, bytes]] = []
    buses = []
    for i, device in enumerate(devices):
        bus = Bus.for_device(site, device)
        bus.subscribe(
            bus.topics.all_of("counter_state"),
            lambda incoming, i=i: arrivals.append((i, time.time(), incoming.payload)),
        )
        bus.start(wait=10)
        buses.append(bus)
    ready.put(len(buses))
    done.wait(900)
    for bus in buses:
        bus.stop()
    # First arrival per screen of each (counter, call_seq): later copies are the same call
    # republished (queue length changed), not the call reaching the screen.
    first: dict[tuple[int, int, int], float] = {}
    for screen, at, payload in arrivals:
        if payload:
            state = m.decode(m.CounterState, payload)
            first.setdefault((screen, state.counter, state.call_seq), at)
    received: dict[tuple[int, int], list[float]] = {}
    for (_screen, counter, call_seq), at in first.items():
        received.setdefault((counter, call_seq), []).append(at)
    out.put(received)


def c_clients_phase(site_file_text: str, port: int, kiosks: int, per_kiosk: int) -> None:
    """The hub's own capacity: kiosks played by mosquitto_pub (C), replies counted by
    mosquitto_sub, so the load generator costs little CPU next to the hub."""
    site = parse_site(site_file_text)
    services = list(site.services)
    sub = subprocess.Popen(
        ["mosquitto_sub", "-p", str(port), "-q", "0", "-t", Topics(site.site.id).all_of("reply"),
         "-C", str(kiosks * per_kiosk), "-W", "120", "-F", "%U"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    time.sleep(0.5)
    feeds = []
    for k in range(1, kiosks + 1):
        device = f"kiosk-{k:02d}"
        lines = "\n".join(
            m.encode(m.IssueTicket(device=device, service=services[i % len(services)])).decode()
            for i in range(per_kiosk)
        )
        feeds.append((device, lines))
    started = time.time()
    pubs = []
    for device, lines in feeds:
        topic = Topics(site.site.id).command(device, "issue")
        pub = subprocess.Popen(
            ["mosquitto_pub", "-p", str(port), "-q", "1", "-t", topic, "-l", "-i", f"load-{device}"],
            stdin=subprocess.PIPE, text=True,
        )  # fmt: skip
        pubs.append((pub, lines))
    for pub, lines in pubs:
        pub.stdin.write(lines + "\n")
        pub.stdin.close()
    times = [float(line) for line in sub.communicate(timeout=180)[0].split()]
    for pub, _ in pubs:
        pub.wait(30)
    rate = len(times) / (max(times) - started) if times else 0.0
    print(
        f"hub capacity with C load generators ({kiosks} mosquitto_pub kiosks, pipelined): "
        f"{len(times)} replies in {max(times) - started:.2f} s -> {rate:,.0f} durable tickets/s"
    )
    figure(
        f"hub: durable tickets/s, {kiosks} kiosks as C clients (hub capacity)",
        round(rate),
        "/s",
        ">= 1000",
    )


def start_c_screens(text: str, port: int, count: int, workdir: Path) -> list[tuple]:
    """Screens played by mosquitto_sub: each writes the arrival time of every counter state."""
    site = parse_site(text)
    screens = []
    for i in range(count):
        out = workdir / f"screen-{i:02d}.txt"
        sub = subprocess.Popen(
            ["stdbuf", "-oL", "mosquitto_sub", "-p", str(port), "-q", "1", "-i", f"c-screen-{i}",
             "-t", Topics(site.site.id).all_of("counter_state"), "-F", "%U %p"],
            stdout=out.open("w"), text=True,
        )  # fmt: skip
        screens.append((sub, out))
    return screens


def c_screen_arrivals(screens: list[tuple]) -> dict[tuple[int, int], list[float]]:
    """Stop the C screens; first arrival per screen of each (counter, call_seq)."""
    received: dict[tuple[int, int], list[float]] = {}
    for sub, out in screens:
        sub.terminate()
        sub.wait(10)
        first: dict[tuple[int, int], float] = {}
        for line in out.read_text().splitlines():
            at, _, payload = line.partition(" ")
            if payload:
                state = m.decode(m.CounterState, payload.encode())
                first.setdefault((state.counter, state.call_seq), float(at))
        for key, at in first.items():
            received.setdefault(key, []).append(at)
    return received


def measure_calls(
    args: argparse.Namespace, text: str, port: int, out: mp.Queue, workdir: Path, c_screens: bool
) -> None:
    """NEXT presses at a set rate from caller processes; when each call's new retained counter
    state reaches each screen (its first arrival there), and each NEXT's reply."""
    done = mp.Event()
    ready: mp.Queue = mp.Queue()
    screen_ids = [f"tv-{d:02d}" for d in range(1, args.screens + 1)]
    sprocs: list[mp.Process] = []
    c_subs: list[tuple] = []
    if c_screens:
        c_subs = start_c_screens(text, port, args.screens, workdir)
    else:
        sprocs = [
            mp.Process(target=screen_worker, args=(text, screen_ids[i::4], done, ready, out))
            for i in range(min(4, args.screens))
        ]
        for p in sprocs:
            p.start()
        for _ in sprocs:
            ready.get(timeout=60)
    time.sleep(1.0)
    groups = [list(range(1 + i, args.counters + 1, args.callers)) for i in range(args.callers)]
    cprocs = [
        mp.Process(
            target=caller_worker,
            args=(text, g, args.calls // args.callers, args.callers / args.call_rate, i, out),
        )
        for i, g in enumerate(groups)
    ]
    started = time.perf_counter()
    for p in cprocs:
        p.start()
    cresults = [out.get(timeout=600) for _ in cprocs]
    call_elapsed = time.perf_counter() - started
    for p in cprocs:
        p.join()
    time.sleep(1.0)
    done.set()
    received: dict[tuple[int, int], list[float]] = {}
    if c_screens:
        received = c_screen_arrivals(c_subs)
    for _ in sprocs:
        for key, times in out.get(timeout=120).items():
            received.setdefault(key, []).extend(times)
    for p in sprocs:
        p.join()
    sent = {k: v for s, _ in cresults for k, v in s.items()}
    reply_lat = [x for _, lat in cresults for x in lat]
    state_lat = [t - sent[k] for k, times in received.items() if k in sent for t in times]
    complete = sum(1 for k in sent if len(received.get(k, [])) == args.screens)
    kind = "C screens" if c_screens else "Python screens"
    where = f"{args.counters} counters, {args.screens} {kind}"
    figure(f"hub: NEXT->state at screen p50 ({kind})", round(pct(state_lat, 50) * 1000, 1), "ms")
    figure(
        f"hub: NEXT->state at screen p99 ({where})",
        round(pct(state_lat, 99) * 1000, 1),
        "ms",
        "< 10",
    )
    figure(f"hub: NEXT command->reply p99 ({kind})", round(pct(reply_lat, 99) * 1000, 1), "ms")
    print(
        f"calls ({kind}): {len(sent)} NEXT at {args.counters} counters in {call_elapsed:.1f} s "
        f"({len(sent) / call_elapsed:,.0f}/s), {args.screens} screens subscribed"
    )
    print(
        f"NEXT command->reply: p50 {pct(reply_lat, 50) * 1000:.1f} ms, "
        f"p99 {pct(reply_lat, 99) * 1000:.1f} ms"
    )
    print(
        f"NEXT->retained state at a screen: p50 {pct(state_lat, 50) * 1000:.1f} ms, "
        f"p99 {pct(state_lat, 99) * 1000:.1f} ms, max {max(state_lat) * 1000:.1f} ms "
        f"({len(state_lat)} deliveries; {complete}/{len(sent)} calls seen by every screen)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tickets", type=int, default=5000)
    parser.add_argument("--kiosks", type=int, default=16)
    parser.add_argument("--in-flight", type=int, default=4, help="requests in flight per kiosk")
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--counters", type=int, default=100)
    parser.add_argument("--screens", type=int, default=20)
    parser.add_argument("--callers", type=int, default=4, help="processes pressing NEXT")
    parser.add_argument(
        "--call-rate",
        type=float,
        default=20.0,
        help="NEXT presses per second, all counters together, at random moments (Poisson); a busy MPP calls about 1/s",
    )
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="mpp-bench-"))
    print(
        f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}; date {time.strftime('%Y-%m-%d %H:%M')}"
    )
    raw = raw_commit_rate(workdir)
    print(f"raw SQLite commits/s (WAL, synchronous=FULL, same disk): {raw:,.0f}")
    figure("hub: raw SQLite commits/s on this disk (WAL, FULL)", round(raw), "/s")

    with Mosquitto() as broker:
        text = synthetic_site(
            counters=args.counters,
            services=20,
            kiosks=args.kiosks,
            displays=args.screens,
            port=broker.port,
            database=str(workdir / "hub.sqlite"),
        )
        site_file = workdir / "site.toml"
        site_file.write_text(text)
        site = parse_site(text)
        hub = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "protocol.cli",
                "hub",
                "--site",
                str(site_file),
                "--first-start",
                "--log-level",
                "WARNING",
            ],
            cwd=ROOT,
        )
        try:
            probe = Bus.for_device(site, "tv-01")
            probe.start(wait=10)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                try:
                    probe.request(m.OpenCounter(device="tv-01", counter=1), timeout=0.5)
                except Exception as exc:  # a display may not command: the hub is up when it says so
                    if getattr(exc, "code", "") == "forbidden":
                        break
            probe.stop()

            services = list(site.services)
            out: mp.Queue = mp.Queue()
            per = args.tickets // args.kiosks
            procs = [
                mp.Process(
                    target=kiosk_worker,
                    args=(
                        text,
                        f"kiosk-{k:02d}",
                        per,
                        services[k % 20 :] + services[: k % 20],
                        args.in_flight,
                        out,
                    ),
                )
                for k in range(1, args.kiosks + 1)
            ]
            hub_cpu = process_cpu_s(hub.pid)
            started = time.perf_counter()
            for p in procs:
                p.start()
            results = [out.get(timeout=600) for _ in procs]
            elapsed = time.perf_counter() - started
            hub_cpu = process_cpu_s(hub.pid) - hub_cpu
            for p in procs:
                p.join()
            latencies = [x for lat, _ in results for x in lat]
            numbers = [x for _, nums in results for x in nums]
            duplicates = len(numbers) - len(set(numbers))
            with sqlite3.connect(workdir / "hub.sqlite") as conn:
                db_dupes = conn.execute(
                    "SELECT COUNT(*) FROM (SELECT 1 FROM tickets GROUP BY issued_service, day, number "
                    "HAVING COUNT(*) > 1)"
                ).fetchone()[0]
                stored = conn.execute("SELECT COUNT(*) FROM tickets").fetchone()[0]
            print(
                f"tickets: {len(numbers)} from {args.kiosks} concurrent kiosks "
                f"({args.in_flight} requests in flight each) in {elapsed:.2f} s "
                f"-> {len(numbers) / elapsed:,.0f} durable tickets/s (synchronous=FULL)"
            )
            print(
                f"issue command->reply: p50 {pct(latencies, 50) * 1000:.1f} ms, "
                f"p99 {pct(latencies, 99) * 1000:.1f} ms, max {max(latencies) * 1000:.1f} ms"
            )
            print(f"duplicates: {duplicates} in replies, {db_dupes} in database; stored {stored}")
            per_ticket_ms = hub_cpu / max(1, len(numbers)) * 1000
            print(
                f"hub process CPU: {per_ticket_ms:.2f} ms per ticket (all its threads: queue, "
                f"SQLite, MQTT) -> {1000 / per_ticket_ms:,.0f} tickets/s per core for the hub alone; "
                "the kiosks' processes and the broker share the same 2 cores here"
            )
            figure("hub: CPU per durable ticket (hub process)", round(per_ticket_ms, 2), "ms")
            figure(
                f"hub: durable tickets/s, {args.kiosks} kiosks",
                round(len(numbers) / elapsed),
                "/s",
                ">= 1000",
            )
            figure("hub: issue command->reply p50", round(pct(latencies, 50) * 1000, 1), "ms")
            figure("hub: issue command->reply p99", round(pct(latencies, 99) * 1000, 1), "ms")
            figure(
                f"hub: duplicate numbers, {args.kiosks} concurrent kiosks",
                duplicates + db_dupes,
                "",
                "0",
            )

            if shutil.which("mosquitto_pub") and shutil.which("mosquitto_sub"):
                c_clients_phase(text, broker.port, args.kiosks, args.tickets // args.kiosks)

            # Calls, twice: first with the screens played by mosquitto_sub (C: the hub and the
            # broker's latency, with subscribers as light as a TV's network stack), then by
            # Python clients five to a process (our display's paho, sharing these 2 cores).
            if shutil.which("mosquitto_sub") and shutil.which("stdbuf"):
                measure_calls(args, text, broker.port, out, workdir, c_screens=True)
            measure_calls(args, text, broker.port, out, workdir, c_screens=False)
        finally:
            hub.terminate()
            hub.wait(10)
    print(
        f"(median of reply latencies {statistics.median(latencies) * 1000:.1f} ms; work dir {workdir})"
    )


if __name__ == "__main__":
    main()
