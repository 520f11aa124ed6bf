"""Display figures: redraw time, idle CPU, memory, start to first frame, call -> sound latency.

Real parts: Mosquitto on loopback, the hub in its own process (`mpp hub`, SQLite in a temp
dir), the display as `mpp display` in its own process (for CPU, memory and start-up) or
in-process (for the announcement latency, to read the announcer's timestamps), pygame on SDL's
dummy video and audio drivers (no screen, no sound card on this machine), speech by pyttsx3 on
espeak-ng written to WAV and played through pygame.mixer.

    .venv/bin/python bench/display_bench.py [--calls 30] [--idle 60]

Printed:
- full redraw of each zone at 1920x1080: first (cold: fonts and text rendered) and warm
  (every region redrawn, text cache warm), median of 50;
- start -> first frame: from spawning `mpp display` to its "first frame drawn" log line;
- idle CPU of the display process over --idle seconds (lobby, full retained state, no calls)
  and its resident memory (VmRSS, peak VmHWM);
- call-state received -> audio playback start, and NEXT press (caller box's request) ->
  audio playback start through the real hub, p50 / p99 / max over --calls calls, each call a
  new ticket (so a new phrase is synthesised every time: the cache never helps);
- the opening burst: --burst counters press NEXT at once (each from its own caller box
  connection); how many calls are spoken (full or short), how many are not (stale or
  superseded), and the worst NEXT press -> playback start of those spoken.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import pct, site_text  # noqa: E402
from bench.figures import figure  # noqa: E402
from display.announcer import SpeechAnnouncer  # noqa: E402
from display.app import DisplayApp, layout_factory  # noqa: E402
from display.renderer import MixerPlayer, Renderer  # noqa: E402
from display.scene import SceneBuilder  # noqa: E402
from display.state import ScreenModel  # noqa: E402
from display.video import VideoPlan  # noqa: E402
from protocol import messages as m  # noqa: E402
from protocol.brokers import Mosquitto  # noqa: E402
from protocol.mqtt import Bus  # noqa: E402
from protocol.site import parse_site  # noqa: E402

PYTHON_MAIN = "from protocol.cli import main; main()"
DUMMY = VideoPlan(("dummy",), fullscreen=False)


def busy_model(site, now: float) -> ScreenModel:
    model = ScreenModel(site)
    seq = 0
    for number, counter in sorted(site.counters.items()):
        seq += 1
        code = counter.services[0]
        model.apply(
            m.CounterState(seq=seq, counter=number, open=True, call_seq=number,
                           ticket=f"{site.services[code].prefix}{number * 3:03d}", service=code,
                           called_at=now - 100 + number, waiting=3),
            now,
        )  # fmt: skip
    for i, code in enumerate(site.services):
        seq += 1
        model.apply(m.ServiceState(seq=seq, service=code, open=True, waiting=2 * i,
                                   est_wait_s=600, quota_left=50), now)  # fmt: skip
    return model


def bench_redraw(site) -> None:
    print("\n== full redraw at 1920x1080 (SDL dummy video driver)")
    now = time.time()
    model = busy_model(site, now)
    for zone in ("lobby", "canteen", "entrance"):
        renderer = Renderer(layout_factory(site, zone), (1920, 1080), DUMMY)
        layout = renderer.open()
        builder = SceneBuilder(site, zone, layout, "id", ROOT / "examples")
        scene = builder.build(model, now, {}, offline=False)
        began = time.perf_counter()
        renderer.render(scene)
        cold = (time.perf_counter() - began) * 1000
        warm = []
        for _ in range(50):
            renderer.invalidate()
            began = time.perf_counter()
            renderer.render(scene)
            warm.append((time.perf_counter() - began) * 1000)
        began = time.perf_counter()
        for i in range(200):
            builder.build(model, now + i * 0.001, {}, offline=False)
        build_ms = (time.perf_counter() - began) * 1000 / 200
        figure(
            f"display: full redraw at 1080p, {zone}, warm median",
            round(statistics.median(warm), 2),
            "ms",
        )
        print(
            f"{zone:9s} first {cold:6.1f} ms   warm median {statistics.median(warm):5.2f} ms"
            f"  p99 {pct(warm, 99):5.2f} ms   scene build {build_ms:.2f} ms"
        )
        renderer.close()


def proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_mem_mb(pid: int) -> tuple[float, float]:
    status = Path(f"/proc/{pid}/status").read_text()
    rss = int(re.search(r"VmRSS:\s+(\d+)", status)[1]) / 1024  # type: ignore[index]
    hwm = int(re.search(r"VmHWM:\s+(\d+)", status)[1]) / 1024  # type: ignore[index]
    return rss, hwm


def spawn_display(site_file: Path, device: str, run_for: float, cache: Path) -> tuple:
    """Start `mpp display`; returns (process, seconds until 'first frame drawn')."""
    began = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-c", PYTHON_MAIN, "display", "--site", str(site_file), "--device",
         device, "--run-for", str(run_for), "--cache-dir", str(cache)],
        cwd=ROOT, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    assert proc.stderr is not None
    first = None
    for line in proc.stderr:
        if "first frame drawn" in line:
            first = time.monotonic() - began
            break
    threading.Thread(target=proc.stderr.read, daemon=True).start()  # keep the pipe drained
    return proc, first


def bench_process(site_file: Path, idle_s: float, cache: Path) -> None:
    print("\n== display process (`mpp display`, SDL dummy video and audio)")
    firsts = []
    for device in ("tv-lobby-1", "tv-canteen-1", "tv-entrance", "tv-lobby-1", "tv-lobby-3"):
        proc, first = spawn_display(site_file, device, 1.0, cache)
        proc.wait(30)
        firsts.append(first or float("nan"))
        print(f"start -> first frame ({device}): {first:.2f} s")
    print(
        f"start -> first frame: median {statistics.median(firsts):.2f} s, max {max(firsts):.2f} s"
    )
    figure("display: start -> first frame, median", round(statistics.median(firsts), 2), "s", "< 2")
    proc, first = spawn_display(site_file, "tv-lobby-1", idle_s + 15, cache)
    time.sleep(5)  # connected, retained state drawn, speech engine up
    cpu0, t0 = proc_cpu_s(proc.pid), time.monotonic()
    time.sleep(idle_s)
    cpu1, t1 = proc_cpu_s(proc.pid), time.monotonic()
    rss, hwm = proc_mem_mb(proc.pid)
    proc.terminate()
    proc.wait(30)
    figure(
        f"display: idle CPU over {t1 - t0:.0f} s",
        round(100 * (cpu1 - cpu0) / (t1 - t0), 2),
        "% of a core",
        "< 2",
    )
    figure("display: RSS", round(rss, 1), "MB", "< 120")
    print(
        f"idle lobby over {t1 - t0:.0f} s: CPU {100 * (cpu1 - cpu0) / (t1 - t0):.2f} % of one core"
        f"   RSS {rss:.1f} MB (peak {hwm:.1f} MB)"
    )


def bench_latency(site, calls: int, workdir: Path) -> None:
    print(f"\n== call -> audio playback start ({calls} calls, SDL dummy audio driver)")
    kiosk = Bus.for_device(site, "kiosk-3")
    caller = Bus.for_device(site, "caller-03")
    assert kiosk.start(wait=10) and caller.start(wait=10)
    for _ in range(calls):
        kiosk.request(m.IssueTicket(device="kiosk-3", service="ktp"), timeout=5)
    caller.request(m.OpenCounter(device="caller-03", counter=3, officer="Bench"), timeout=5)
    announcer = SpeechAnnouncer(MixerPlayer(), workdir / "speech")
    renderer = Renderer(layout_factory(site, "lobby"), (1920, 1080), DUMMY)
    app = DisplayApp(site, "tv-lobby-1", bus=Bus.for_device(site, "tv-lobby-1"),
                     renderer=renderer, announcer=announcer, base_dir=ROOT / "examples")  # fmt: skip
    app.start()
    app.run(until=lambda: len(app.model.services) == len(site.services), timeout=10)
    presses: list[float] = []

    def press_all() -> None:
        for i in range(calls):
            deadline = time.monotonic() + 30
            while len(announcer.spoken) < i and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(0.3)
            presses.append(time.monotonic())
            caller.request(m.CallNext(device="caller-03", counter=3), timeout=5)

    presser = threading.Thread(target=press_all, daemon=True)
    presser.start()
    app.run(until=lambda: len(announcer.spoken) >= calls, timeout=calls * 15)
    presser.join(5)
    app.close()
    kiosk.stop()
    caller.stop()
    spoken = announcer.spoken
    errors = [s.error for s in spoken if s.error]
    state_ms = [(s.started_at - s.received_at) * 1000 for s in spoken]
    press_ms = [(s.started_at - p) * 1000 for s, p in zip(spoken, presses, strict=False)]
    print(f"announcements: {len(spoken)} of {calls}, errors: {len(errors)}")
    for label, values in (("call state received -> playback start", state_ms),
                          ("NEXT press -> playback start (real hub)", press_ms)):  # fmt: skip
        print(
            f"{label}: p50 {pct(values, 50):.1f} ms  p99 {pct(values, 99):.1f} ms"
            f"  max {max(values):.1f} ms"
        )
    print(f"texts: {spoken[0].text!r} ... {spoken[-1].text!r}")
    figure(
        "display: NEXT press -> audio playback start (real hub), p50",
        round(pct(press_ms, 50), 1),
        "ms",
    )
    figure(
        "display: NEXT press -> audio playback start (real hub), p99",
        round(pct(press_ms, 99), 1),
        "ms",
        "< 300",
    )


def bench_burst(site, counters: int, workdir: Path) -> None:
    """The opening burst: every counter presses NEXT at once; when is each call heard?"""
    print(f"\n== opening burst: {counters} counters press NEXT at once (canteen TV, real hub)")
    numbers = sorted(site.counters)[:counters]
    callers = {spec.counter: device for device, spec in site.devices.items()
               if spec.role == "caller" and spec.counter in numbers}  # fmt: skip
    kiosk = Bus.for_device(site, "kiosk-1")  # its touch menu offers every service
    buses = {n: Bus.for_device(site, callers[n]) for n in numbers}
    assert kiosk.start(wait=10) and all(bus.start(wait=10) for bus in buses.values())
    for n in numbers:  # two waiting for each counter: every NEXT of the burst calls someone
        for code in (site.counters[n].services * 2)[:2]:
            kiosk.request(m.IssueTicket(device="kiosk-1", service=code), timeout=5)
        buses[n].request(m.OpenCounter(device=callers[n], counter=n, officer="Bench"), timeout=5)
    announcer = SpeechAnnouncer(MixerPlayer(), workdir / "speech")
    renderer = Renderer(layout_factory(site, "canteen"), (1920, 1080), DUMMY)
    app = DisplayApp(site, "tv-canteen-1", bus=Bus.for_device(site, "tv-canteen-1"),
                     renderer=renderer, announcer=announcer, base_dir=ROOT / "examples")  # fmt: skip
    app.start()
    app.run(until=lambda: len(app.model.counters) >= len(numbers), timeout=10)
    pressed: dict[int, float] = {}

    def press(n: int) -> None:
        pressed[n] = time.monotonic()
        buses[n].request(m.CallNext(device=callers[n], counter=n), timeout=10)

    threads = [threading.Thread(target=press, args=(n,), daemon=True) for n in numbers]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    dropped = getattr(announcer, "dropped", [])  # (the announcer before this bench had none)
    app.run(until=lambda: len(announcer.spoken) + len(dropped) >= len(numbers),
            timeout=len(numbers) * 10)  # fmt: skip
    for thread in threads:
        thread.join(5)
    app.close()
    kiosk.stop()
    for bus in buses.values():
        bus.stop()
    spoken = announcer.spoken
    delays = [s.started_at - pressed[s.key[0]] for s in spoken if s.key[0] in pressed]
    short = sum(1 for s in spoken if getattr(s, "short", False))
    reasons = statistics.multimode([d.reason for d in dropped]) if dropped else []
    print(f"presses spread over {max(pressed.values()) - began:.2f} s")
    print(f"spoken: {len(spoken)} ({short} in the short form), not spoken: {len(dropped)} "
          f"({', '.join(reasons) or '-'}), errors: {sum(1 for s in spoken if s.error)}")  # fmt: skip
    print(f"NEXT press -> playback start: p50 {pct(delays, 50):.1f} s, "
          f"worst {max(delays):.1f} s; last announcement ended "
          f"{max(s.ended_at for s in spoken) - began:.1f} s after the burst")  # fmt: skip
    figure(f"display: {len(numbers)}-call burst, worst NEXT -> playback start",
           round(max(delays), 1), "s", "<= 30 (--max-age)")  # fmt: skip
    figure(f"display: {len(numbers)}-call burst, calls spoken", len(spoken), "calls")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=30)
    parser.add_argument("--idle", type=float, default=60.0)
    parser.add_argument("--burst", type=int, default=30, help="counters in the opening burst")
    parser.add_argument("--only-burst", action="store_true", help="measure the burst alone")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}; "
        f"load avg {os.getloadavg()[0]:.2f}; {time.strftime('%Y-%m-%d %H:%M')}"
    )
    with tempfile.TemporaryDirectory(prefix="mpp-display-bench-") as tmp, Mosquitto() as broker:
        workdir = Path(tmp)
        text = site_text(broker.port, workdir / "hub.sqlite", "display")
        site_file = workdir / "site.toml"
        site_file.write_text(text)
        (workdir / "umkm").symlink_to(ROOT / "examples" / "umkm")
        site = parse_site(text, str(site_file))
        if not args.only_burst:
            bench_redraw(site)
        hub = subprocess.Popen(
            [sys.executable, "-c", PYTHON_MAIN, "hub", "--site", str(site_file), "--first-start"],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            time.sleep(2)
            if not args.only_burst:
                bench_process(site_file, args.idle, workdir / "speech")
                bench_latency(site, args.calls, workdir)
            bench_burst(site, args.burst, workdir)
        finally:
            hub.terminate()
            hub.wait(10)


if __name__ == "__main__":
    main()
