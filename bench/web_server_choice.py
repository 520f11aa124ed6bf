"""Which WSGI server for the site web: candidates under thousands of idle live streams.

Each candidate serves the same tiny WSGI app in its own process: `/events` is a server-sent
event stream (an event at once, then one every second), `/healthz` answers at once. The script
opens N idle streams, then measures `/healthz` (p50/p99), the server's RSS and threads, whether
the streams' events arrive unbuffered (gap between events as the client reads them), and
`/healthz` again while 200 connections send their request head one byte every few seconds.

    .venv/bin/python bench/web_server_choice.py [--streams 2000] [--candidates werkzeug,...]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import selectors
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import line, machine  # noqa: E402
from protocol.brokers import free_port  # noqa: E402

APP = """
import time
def app(environ, start_response):
    if environ["PATH_INFO"] == "/events":
        start_response("200 OK", [("Content-Type", "text/event-stream"), ("Cache-Control", "no-store")])
        def body():
            n = 0
            while True:
                yield f"event: tick\\ndata: {n} {time.time()}\\n\\n".encode()
                n += 1
                time.sleep(1.0)
        return body()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [b'{"ok": true}']
"""

SERVE = {
    "werkzeug": "from werkzeug.serving import run_simple; run_simple('127.0.0.1', {port}, app, threaded=True)",
    "waitress": "import waitress; waitress.serve(app, host='127.0.0.1', port={port}, threads=16, connection_limit=5000)",
    "gevent.pywsgi": (
        "from gevent import monkey; monkey.patch_all()\n"
        "from gevent.pool import Pool; from gevent.pywsgi import WSGIServer\n"
        "WSGIServer(('127.0.0.1', {port}), app, spawn=Pool(5000), log=None).serve_forever()"
    ),
}
GUNICORN = ["-m", "gunicorn", "-k", "gevent", "-w", "1", "--worker-connections", "5000",
            "--keep-alive", "10", "--log-level", "warning", "-b", "127.0.0.1:{port}", "app:app"]  # fmt: skip


def start(name: str, port: int, workdir: Path) -> subprocess.Popen[bytes]:
    """The candidate serving APP on `port` (a process of its own)."""
    (workdir / "app.py").write_text(APP)
    if name == "gunicorn+gevent":
        args = [sys.executable, *(a.format(port=port) for a in GUNICORN)]
    else:
        script = workdir / f"serve_{name.replace('.', '_')}.py"
        script.write_text(APP + SERVE[name].format(port=port) + "\n")
        args = [sys.executable, str(script)]
    proc = subprocess.Popen(args, cwd=workdir, stderr=(workdir / f"{name}.err").open("wb"))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"{name} did not listen on {port}")


def healthz(port: int, count: int) -> list[float]:
    """Durations of `count` sequential GET /healthz (new connection each; 10 s timeout)."""
    times = []
    for _ in range(count):
        started = time.perf_counter()
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                while sock.recv(4096):
                    pass
        except OSError:
            times.append(10.0)
            continue
        times.append(time.perf_counter() - started)
    return times


def open_streams(port: int, count: int, within: float) -> tuple[list[socket.socket], int]:
    """`count` connections asking for /events; how many got their first event in `within` s."""
    sel = selectors.DefaultSelector()
    socks = []
    for _ in range(count):
        sock = socket.socket()
        sock.setblocking(False)
        sock.connect_ex(("127.0.0.1", port))
        sel.register(sock, selectors.EVENT_WRITE)
        socks.append(sock)
    started, served = time.monotonic(), 0
    while time.monotonic() - started < within and served < count:
        for key, mask in sel.select(0.5):
            sock = key.fileobj
            if mask & selectors.EVENT_WRITE:
                try:
                    sock.send(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
                except OSError:
                    sel.unregister(sock)
                    continue
                sel.modify(sock, selectors.EVENT_READ)
            else:
                data = b""
                with contextlib.suppress(OSError):
                    data = sock.recv(4096)
                if b"event: tick" in data or not data:
                    sel.unregister(sock)
                    served += bool(data)
    sel.close()
    return socks, served


def event_gaps(port: int, count: int) -> list[float]:
    """Gaps between events of one stream as read (1 s each when nothing is buffered)."""
    gaps = []
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
        last = None
        seen = 0
        while seen < count:
            data = sock.recv(4096)
            if not data:
                break
            now = time.perf_counter()
            ticks = data.count(b"event: tick")
            if ticks and last is not None:
                gaps.append(now - last)
            if ticks:
                last, seen = now, seen + ticks
    return gaps


def slow_heads(port: int, count: int) -> list[socket.socket]:
    """`count` connections that have sent only the start of a request head."""
    socks = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.send(b"GET /healthz HTTP/1.1\r\n")
        socks.append(sock)
    return socks


def rss_threads(pid: int) -> tuple[float, int]:
    """(RSS MB, threads) of a process and its children (gunicorn's worker)."""
    pids = [pid, *(int(p) for p in os.popen(f"pgrep -P {pid}").read().split())]
    rss, threads = 0.0, 0
    for p in pids:
        for row in Path(f"/proc/{p}/status").read_text().splitlines():
            if row.startswith("VmRSS:"):
                rss += int(row.split()[1]) / 1024
            if row.startswith("Threads:"):
                threads += int(row.split()[1])
    return rss, threads


def run(name: str, streams: int, workdir: Path) -> None:
    port = free_port()
    proc = start(name, port, workdir)
    try:
        measure(name, port, proc, streams)
    except OSError as exc:
        print(f"{name}: failed: {exc!r}; server exit code {proc.poll()}")
    finally:
        proc.kill()
        proc.wait()


def measure(name: str, port: int, proc: subprocess.Popen[bytes], streams: int) -> None:
    """Every figure of one candidate (its process serving on `port`)."""
    if True:
        print(line(f"{name}: /healthz, no streams", healthz(port, 100)))
        socks, served = open_streams(port, streams, within=30)
        rss, threads = rss_threads(proc.pid)
        print(f"{name}: {served}/{streams} streams got their first event in 30 s; "
              f"RSS {rss:.0f} MB, {threads} threads")  # fmt: skip
        print(line(f"{name}: /healthz with {streams} streams open", healthz(port, 100)))
        gaps = event_gaps(port, 4)
        print(f"{name}: gaps between events (1 s each unbuffered): "
              + ", ".join(f"{g:.2f}" for g in gaps))  # fmt: skip
        slow = slow_heads(port, 200)
        print(line(f"{name}: /healthz with 200 slow request heads", healthz(port, 50)))
        for sock in slow + socks:
            sock.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=2000)
    parser.add_argument("--candidates", default="werkzeug,waitress,gunicorn+gevent,gevent.pywsgi")
    args = parser.parse_args()
    print(machine())
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        for name in args.candidates.split(","):
            run(name, args.streams, Path(tmp))


if __name__ == "__main__":
    main()
