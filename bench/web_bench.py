"""The web process under a crowd of phones: the real `mpp hub` and `mpp web` processes on a real
Mosquitto, with 0 / 1,000 / 2,000 citizens' ticket pages holding a live stream open.

For each crowd size it prints: a kiosk's `issue` -> reply p99 (the hub must not notice the
crowd: goal within 1.2x of the figure with no pages), `/healthz` p99 (goal < 100 ms), the web
process's RSS, and a caller's NEXT -> the new "people ahead" arriving on an open ticket page's
stream p99 (goal < 500 ms). Then 200 connections that send a request head slowly for 60 s,
each opened again at once when the server cuts it at its head deadline (10 s), while
`/healthz` and a caller's NEXT -> an open ticket page's update are timed beside them.

Each page's stream comes from its own loopback address (127.0.x.y), as phones on the Wi-Fi do;
one thread reads them all (selectors). Every loop is bounded.

Each crowd size runs twice, in a balanced order (0, 1,000, 2,000, 2,000, 1,000, 0), and a
size's samples are pooled: the hub's answers slow down as the run's tickets pile up in its
queues (no pages: p99 5.8 ms in the first round, 9.1 ms in the last), so sizes compared round
against round would measure that drift; in this order a steady drift weighs on each size alike.
(The p99 of 200 issues, the earlier method, was their second-slowest.) The web process's CPU per issued ticket and with idle streams is printed
beside it; the pages' reader runs in a process of its own at the lowest priority (the phones
are other machines).

    .venv/bin/python bench/web_bench.py [--pages 0,1000,2000,2000,1000,0] [--issues 1000]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import re
import selectors
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import line, machine, pct, site_text  # noqa: E402
from bench.figures import figure  # noqa: E402
from protocol import messages as m  # noqa: E402
from protocol.brokers import Mosquitto, free_port  # noqa: E402
from protocol.errors import CommandRejected  # noqa: E402
from protocol.mqtt import Bus  # noqa: E402
from protocol.site import parse_site  # noqa: E402

AHEAD_RE = re.compile(rb'"people_ahead":(\d+)')


def start(args: list[str], log: Path, nice: int = 0) -> subprocess.Popen[bytes]:
    """An `mpp` process of the site (its output to `log`), at niceness `nice`."""
    with log.open("ab") as out:
        niced = ["nice", "-n", str(nice)] if nice else []
        return subprocess.Popen(
            [*niced, sys.executable, "-m", "protocol.cli", *args], cwd=ROOT, stdout=out, stderr=out
        )


def rss_mb(pid: int) -> float:
    """Resident memory of a process."""
    for row in Path(f"/proc/{pid}/status").read_text().splitlines():
        if row.startswith("VmRSS:"):
            return int(row.split()[1]) / 1024
    return float("nan")


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def get(port: int, path: str, timeout: float = 10.0) -> tuple[float, bytes]:
    """(seconds, response bytes) of one GET on a new connection."""
    started = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return time.perf_counter() - started, data


def streams(port: int) -> int:
    """How many live streams the web process says it serves (`/healthz`)."""
    return json.loads(get(port, "/healthz")[1].partition(b"\r\n\r\n")[2])["streams"]


class Pages:
    """`tokens`' ticket pages' live streams, each from its own loopback address, read by a
    process of its own until `close()` (the phones are not in the kiosk: their reader's
    wake-ups, a keep-alive every 15 s from each stream, must not queue for the interpreter lock
    of the process that times the kiosk's commands)."""

    def __init__(self, port: int, tokens: list[str]) -> None:
        spawn = multiprocessing.get_context("spawn")
        self._opened = spawn.Value("i", 0)
        self._stop = spawn.Event()
        self.process = spawn.Process(
            target=_read_pages, args=(port, tokens, self._opened, self._stop), daemon=True
        )
        self.process.start()

    @property
    def opened(self) -> int:
        """How many streams have begun (their first bytes arrived)."""
        return self._opened.value

    def close(self) -> None:
        self._stop.set()
        self.process.join(10)
        if self.process.is_alive():
            self.process.kill()


def _read_pages(port: int, tokens: list[str], opened: Any, stop: Any) -> None:
    """The body of `Pages`' process: open every stream, then read them until `stop`. At the
    lowest priority: the phones are other machines; here their reader only takes CPU the
    site's processes do not want."""
    os.nice(19)
    sel = selectors.DefaultSelector()
    socks = []
    for i, token in enumerate(tokens):
        sock = socket.socket()
        sock.bind((f"127.0.{10 + i // 250}.{1 + i % 250}", 0))
        sock.setblocking(False)
        sock.connect_ex(("127.0.0.1", port))
        sel.register(sock, selectors.EVENT_WRITE, token)
        socks.append(sock)
    while not stop.is_set():
        for key, mask in sel.select(0.2):
            sock = key.fileobj
            try:
                if mask & selectors.EVENT_WRITE:
                    request = f"GET /t/{key.data}/events HTTP/1.1\r\nHost: x\r\n\r\n"
                    sock.send(request.encode())  # type: ignore[union-attr]
                    sel.modify(sock, selectors.EVENT_READ, key.data)
                elif sock.recv(65536):  # type: ignore[union-attr]
                    if key.data:
                        opened.value += 1
                        sel.modify(sock, selectors.EVENT_READ, "")
                else:
                    sel.unregister(sock)
            except OSError:
                sel.unregister(sock)
    for sock in socks:
        sock.close()
    sel.close()


class Watch:
    """One open ticket page's stream: when each people-ahead figure first arrived."""

    def __init__(self, port: int, token: str) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.sock.sendall(f"GET /t/{token}/events HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        self.seen: dict[int, float] = {}
        self.head = b""  # the response's first bytes, for a failure's message
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        buffer = b""
        while True:
            try:
                chunk = self.sock.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            if len(self.head) < 2000:
                self.head += chunk[: 2000 - len(self.head)]
            buffer = (buffer + chunk)[-200_000:]
            for found in AHEAD_RE.finditer(buffer):
                self.seen.setdefault(int(found[1]), time.monotonic())
            buffer = buffer[-2000:]

    def until(self, ahead: int, timeout: float = 10) -> float | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ahead in self.seen:
                return self.seen[ahead]
            time.sleep(0.002)
        return None

    def close(self) -> None:
        self.sock.close()


def issue(kiosk: Bus, service: str) -> m.TicketInfo:
    reply = kiosk.request(m.IssueTicket(device=kiosk.device, service=service), timeout=10)
    return m.IssueResult.model_validate(reply).ticket


def drain(caller: Bus) -> None:
    """Call every waiting ticket at counter 3 (ktp) so a round starts from its empty queue."""
    for _ in range(2000):
        try:
            caller.request(m.CallNext(device="caller-03", counter=3), timeout=10)
        except CommandRejected:  # queue_empty
            return


def round_of(
    pages: int, args: argparse.Namespace, port: int, web_pid: int, kiosks: list[Bus], caller: Bus
) -> dict[str, Any]:
    """Every figure with `pages` ticket pages open (and the raw times, for pooling)."""
    kiosk = kiosks[0]
    codes = [c for c in args.services if c != "ktp"]
    tokens = [issue(kiosks[i % 2], codes[i % len(codes)]).token for i in range(pages)]
    crowd = Pages(port, tokens)
    deadline = time.monotonic() + 120
    while crowd.opened < pages and time.monotonic() < deadline:
        time.sleep(0.2)
    # The server counts the streams it serves: those of an earlier round's closed pages end
    # at their next keep-alive write or two (up to 30 s); the round starts once they have.
    while (serving := streams(port)) != crowd.opened and time.monotonic() < deadline:
        time.sleep(0.5)
    print(f"-- {pages} ticket pages: {crowd.opened} streams open, the server serves {serving}; "
          f"RSS {rss_mb(web_pid):.0f} MB")  # fmt: skip
    out: dict[str, Any] = {"rss": rss_mb(web_pid)}
    idle_cpu = cpu_s(web_pid)
    time.sleep(args.idle_seconds)  # the streams' keep-alives alone
    idle_cpu = (cpu_s(web_pid) - idle_cpu) / args.idle_seconds
    print(f"web process CPU with {pages} idle streams: {idle_cpu * 100:.1f} % of a core")
    replies = []
    web_cpu = cpu_s(web_pid)
    for i in range(args.issues):  # paced like a busy morning's kiosks, not a flood
        started = time.perf_counter()
        issue(kiosk, codes[i % len(codes)])
        replies.append(time.perf_counter() - started)
        time.sleep(0.05)
    web_cpu = cpu_s(web_pid) - web_cpu
    print(line(f"issue -> reply ({pages} pages)", replies))
    print(f"web process CPU while issuing: {web_cpu * 1000 / args.issues:.2f} ms per ticket")
    out["web_cpu_per_issue"] = web_cpu * 1000 / args.issues
    out["replies"] = replies
    health = [get(port, "/healthz")[0] for _ in range(args.health)]
    print(line(f"/healthz ({pages} pages)", health))
    out["health"] = health
    drain(caller)
    for _ in range(args.updates):
        issue(kiosk, "ktp")
    watched = issue(kiosk, "ktp")
    watch = Watch(port, watched.token)
    assert watch.until(watched.people_ahead) is not None, (
        f"the ticket page never showed {watched.people_ahead} ahead; it showed "
        f"{sorted(watch.seen)} (the stream began {watch.head[-600:]!r})"
    )
    updates = []
    for i in range(args.updates):
        sent = time.monotonic()
        caller.request(m.CallNext(device="caller-03", counter=3), timeout=10)
        shown = watch.until(watched.people_ahead - i - 1)
        updates.append(10.0 if shown is None else shown - sent)
        time.sleep(0.1)
    watch.close()
    print(line(f"NEXT -> people ahead on an open ticket page ({pages} pages)", updates))
    out["updates"] = updates
    crowd.close()
    return out


class SlowHeads:
    """`count` connections, each from its own loopback address, sending a request head one byte
    every `gap_s` and never finishing it; a connection the server cuts (at its head deadline) is
    opened again at once, as an attacker would, until `close()`. One thread, bounded by the
    caller's run time."""

    def __init__(self, port: int, count: int, gap_s: float = 5.0) -> None:
        self.port, self.count, self.gap_s = port, count, gap_s
        self.sel = selectors.DefaultSelector()
        self.stop = threading.Event()
        self.connects = self.cut = self.answered_408 = 0
        self.open_now = self.open_min = 0
        for i in range(count):
            self._open(i)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _open(self, i: int) -> None:
        sock = socket.socket()
        sock.bind((f"127.0.200.{1 + i % 250}", 0))
        sock.setblocking(False)
        sock.connect_ex(("127.0.0.1", self.port))
        self.sel.register(sock, selectors.EVENT_WRITE, i)

    def _drop(self, sock: socket.socket, i: int) -> None:
        self.sel.unregister(sock)
        sock.close()
        self.open_now -= 1
        self.cut += 1
        if not self.stop.is_set():
            self._open(i)

    def _run(self) -> None:
        next_byte = time.monotonic() + self.gap_s
        counting_from = time.monotonic() + 2 * self.gap_s  # all connected by then
        self.open_min = self.count
        while not self.stop.is_set():
            for key, mask in self.sel.select(0.2):
                sock, i = key.fileobj, key.data
                try:
                    if mask & selectors.EVENT_WRITE:
                        sock.send(b"G")  # type: ignore[union-attr]
                        self.sel.modify(sock, selectors.EVENT_READ, i)
                        self.connects += 1
                        self.open_now += 1
                        continue
                    data = sock.recv(4096)  # type: ignore[union-attr]
                except OSError:
                    data = b""
                if data.startswith(b"HTTP/1.1 408"):
                    self.answered_408 += 1
                if not data:
                    self._drop(sock, i)  # type: ignore[arg-type]
            now = time.monotonic()
            if now >= next_byte:
                for key in list(self.sel.get_map().values()):
                    with contextlib.suppress(OSError):
                        key.fileobj.send(b"E")  # type: ignore[union-attr]
                next_byte += self.gap_s
            if now >= counting_from:
                self.open_min = min(self.open_min, self.open_now)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        for key in list(self.sel.get_map().values()):
            key.fileobj.close()  # type: ignore[union-attr]
        self.sel.close()


def slow_heads(port: int, kiosk: Bus, caller: Bus, seconds: float, count: int) -> None:
    """`count` slow request heads held for `seconds` (reconnecting when cut), while /healthz
    and a caller's NEXT -> the update on an open ticket page are timed beside them."""
    base = [get(port, "/healthz")[0] for _ in range(50)]
    print(line("/healthz before the slow heads", base))
    drain(caller)
    calls, before_calls = int(seconds / 1.5) + 2, 20
    for _ in range(calls + before_calls):
        issue(kiosk, "ktp")
    watched = issue(kiosk, "ktp")
    watch = Watch(port, watched.token)
    assert watch.until(watched.people_ahead) is not None, (
        f"the ticket page never showed {watched.people_ahead} ahead; it showed "
        f"{sorted(watch.seen)} (the stream began {watch.head[-600:]!r})"
    )
    before: list[float] = []
    for _ in range(before_calls):  # the same page, the same pace, no slow heads yet
        sent = time.monotonic()
        caller.request(m.CallNext(device="caller-03", counter=3), timeout=10)
        shown = watch.until(watched.people_ahead - len(before) - 1)
        before.append(10.0 if shown is None else shown - sent)
        time.sleep(1.4)
    print(line("NEXT -> people ahead on an open ticket page before the slow heads", before))
    ahead = watched.people_ahead - before_calls
    attack = SlowHeads(port, count)
    health, updates = [], []
    started = time.monotonic()
    next_call = started + 1.0
    try:
        while time.monotonic() - started < seconds:
            health.append(get(port, "/healthz")[0])
            if time.monotonic() >= next_call and len(updates) < calls:
                sent = time.monotonic()
                caller.request(m.CallNext(device="caller-03", counter=3), timeout=10)
                shown = watch.until(ahead - len(updates) - 1)
                updates.append(10.0 if shown is None else shown - sent)
                next_call += 1.5
            time.sleep(0.1)
        held = attack.open_min
    finally:
        attack.close()
        watch.close()
    print(line(f"/healthz beside {count} slow request heads ({seconds:.0f} s)", health))
    print(line(f"NEXT -> people ahead on an open ticket page beside {count} slow heads", updates))
    print(
        f"slow heads: {attack.connects} connections opened in {seconds:.0f} s, {attack.cut} cut "
        f"by the server ({attack.answered_408} answered 408 first), at least {held} of "
        f"{count} held open at every moment after the first {2 * attack.gap_s:.0f} s"
    )
    figure(
        "web: /healthz p99 beside 200 slow heads", round(pct(health, 99) * 1000, 1), "ms", "< 100"
    )
    figure(
        "web: NEXT -> page p99 beside 200 slow heads",
        round(pct(updates, 99) * 1000, 1),
        "ms",
        "< 500",
    )
    figure("web: slow-head connections opened in the run", attack.connects, "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", default="0,1000,2000,2000,1000,0")
    parser.add_argument("--issues", type=int, default=1000)
    parser.add_argument("--health", type=int, default=200)
    parser.add_argument("--updates", type=int, default=40)
    parser.add_argument("--idle-seconds", type=float, default=15.0)
    parser.add_argument("--slow-seconds", type=float, default=60.0)
    parser.add_argument("--slow-only", action="store_true", help="only the slow-heads run")
    parser.add_argument(
        "--web-nice", type=int, default=0, help="the web process's niceness (its unit's Nice=)"
    )
    args = parser.parse_args()
    print(machine())
    with tempfile.TemporaryDirectory() as tmp, Mosquitto() as broker:
        work = Path(tmp)
        port = free_port()
        text = site_text(broker.port, work / "hub.sqlite", "web")
        text = text.replace("port = 8080 ", f"port = {port} ", 1)
        site_file = work / "site.toml"
        site_file.write_text(text)
        site = parse_site(text, str(site_file))
        args.services = list(site.services)
        hub = start(
            ["hub", "--site", str(site_file), "--first-start", "--log-level", "WARNING"],
            work / "hub.log",
        )
        web = start(
            ["web", "--site", str(site_file), "--log-level", "WARNING"],
            work / "web.log",
            args.web_nice,
        )
        kiosks = [Bus.for_device(site, d) for d in ("kiosk-1", "kiosk-2")]
        caller = Bus.for_device(site, "caller-03")
        try:
            for bus in [*kiosks, caller]:
                bus.start(wait=10)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz") as r:
                        if json.load(r)["ok"]:
                            break
                except OSError:
                    time.sleep(0.2)
            caller.request(m.OpenCounter(device="caller-03", counter=3, officer="Bench"), 10)
            rounds: dict[int, list[dict[str, Any]]] = {}
            for pages in [] if args.slow_only else (int(p) for p in args.pages.split(",")):
                try:
                    got = round_of(pages, args, port, web.pid, kiosks, caller)
                except AssertionError:
                    for name in ("web.log", "hub.log"):
                        print(f"-- the end of {name}:\n" + (work / name).read_text()[-3000:])
                    raise
                rounds.setdefault(pages, []).append(got)
                time.sleep(2)
            # A crowd size given more than once (`--pages 0,2000,2000,0`: a balanced order, so
            # that the drift as tickets pile up weighs on both sizes alike) has its rounds'
            # samples pooled.
            results = {
                pages: {
                    "issue_p99": pct([t for r in got for t in r["replies"]], 99) * 1000,
                    "health_p99": pct([t for r in got for t in r["health"]], 99) * 1000,
                    "update_p99": pct([t for r in got for t in r["updates"]], 99) * 1000,
                    "rss": got[0]["rss"],  # its first round (the heap does not shrink after)
                    "web_cpu_per_issue": sum(r["web_cpu_per_issue"] for r in got) / len(got),
                    "rounds": len(got),
                }
                for pages, got in rounds.items()
            }
            for pages, got in results.items():
                if got["rounds"] > 1:
                    print(f"{pages} pages, {got['rounds']} rounds pooled: issue p99 "
                          f"{got['issue_p99']:.2f} ms, web CPU {got['web_cpu_per_issue']:.2f} "
                          "ms per ticket")  # fmt: skip
                figure(
                    f"web: issue -> reply p99, {pages} pages",
                    round(got["issue_p99"], 1),
                    "ms",
                    f"within 1.2x of {min(results)} pages" if pages != min(results) else None,
                )
                figure(
                    f"web: /healthz p99, {pages} pages", round(got["health_p99"], 1), "ms", "< 100"
                )
                figure(f"web: RSS, {pages} pages", round(got["rss"]), "MB")
                figure(
                    f"web: NEXT -> page p99, {pages} pages",
                    round(got["update_p99"], 1),
                    "ms",
                    "< 500",
                )
            base = results[min(results)]["issue_p99"] if results else 0
            for pages, got in results.items():
                print(f"issue p99 with {pages} pages / with {min(results)}: "
                      f"{got['issue_p99'] / base:.2f}x")  # fmt: skip
            if args.slow_seconds > 0:
                slow_heads(port, kiosks[0], caller, args.slow_seconds, 200)
        finally:
            for bus in [*kiosks, caller]:
                bus.stop()
            for proc in (web, hub):
                proc.terminate()
                proc.wait(20)
        print(machine())


if __name__ == "__main__":
    main()
