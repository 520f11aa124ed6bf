"""`mpp demo` (a whole MPP on this machine) and `mpp simulate` (a busy day through the real
system, with a report and a chart)."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
from datetime import datetime
from pathlib import Path

import click

from demo.brokers import local_broker
from protocol.logs import setup_logging


@click.command("simulate")
@click.option("--visitors", default=8000, show_default=True)
@click.option("--counters", default=60, show_default=True)
@click.option("--services", default=20, show_default=True)
@click.option("--displays", default=6, show_default=True)
@click.option("--kiosks", default=6, show_default=True)
@click.option(
    "--speed",
    default="max",
    show_default=True,
    help="1 = real time, 60 = an hour a minute, max = as fast as possible",
)
@click.option("--seed", default=20261123, show_default=True)
@click.option(
    "--wait-target",
    default=30.0,
    show_default=True,
    help="Waiting-time SLA: minutes from ticket to call.",
)
@click.option(
    "--day",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default="2026-11-23",
    show_default=True,
    help="The simulated date; a Friday (e.g. 2026-11-27) has the Friday prayer pause.",
)
@click.option("--no-breaks", is_flag=True, help="Officers take no break.")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Where the database, report (simulation.json) and chart go.",
)
@click.option("--broker", type=click.Choice(["auto", "mosquitto", "embedded"]), default="auto")
def simulate(
    *,
    visitors: int,
    counters: int,
    services: int,
    displays: int,
    kiosks: int,
    speed: str,
    seed: int,
    wait_target: float,
    day: datetime,
    no_breaks: bool,
    out_dir: str | None,
    broker: str,
) -> None:
    """Play a day at a busy MPP through the broker, hub and database; print what happened."""
    from demo.simulate import SimConfig, Simulation

    setup_logging("WARNING")
    # The report counts the alerts the hub raises (a warning line each, dozens in a busy day,
    # which broke the progress line); the hub's errors still show.
    logging.getLogger("mpp.hub").setLevel(logging.ERROR)
    try:
        pace = None if speed == "max" else float(speed)
    except ValueError:
        raise click.BadParameter(f"{speed!r}: give a number (1, 60, ...) or 'max'") from None
    workdir = Path(out_dir or tempfile.mkdtemp(prefix="mpp-sim-"))
    workdir.mkdir(parents=True, exist_ok=True)
    config = SimConfig(
        visitors=visitors,
        counters=counters,
        services=services,
        displays=displays,
        kiosks=kiosks,
        speed=pace,
        seed=seed,
        wait_target_min=wait_target,
        day=day.date().isoformat(),
        breaks=not no_breaks,
    )
    running, version, which = local_broker(broker)
    click.echo(f"broker: {which}")
    click.echo(
        f"simulating {visitors} visitors, {counters} counters, {services} services, "
        f"{displays} displays at speed {speed}; output in {workdir}"
    )
    try:
        sim = Simulation(
            config,
            running.port,
            workdir,
            mqtt_version=version,
            progress=lambda line: click.echo(f"\r{line}", nl=False, err=True),
        )
        result = sim.run()
    finally:
        running.close()
    click.echo("", err=True)
    click.echo(format_report(result))
    click.echo(f"report: {workdir / 'simulation.json'}; chart: {workdir / 'queue-lengths.png'}")
    integrity = result["integrity"]
    if any(integrity.values()):
        sys.exit(1)


def format_report(result: dict) -> str:
    """The report as text for the terminal."""
    t, s, i = result["tickets"], result["system"], result["integrity"]
    nexts, wait_sla = result["next_presses"], result["waiting_sla"]
    target = f"{wait_sla['target_min']:g} min"
    lines = [
        f"tickets: issued {t['issued']}, served {t['served']}, no-show {t['no_show']}; "
        f"refused at the kiosk: {_counts(t['refused'])}",
        f"NEXT presses: {nexts['calls']} called someone, {nexts['empty_queue']} found nobody "
        f"waiting (not refusals: the officer looks again later)"
        + (f", refused {_counts(nexts['refused'])}" if nexts["refused"] else ""),
    ]
    if result["other_refusals"]:
        lines.append(
            "other refusals: "
            + "; ".join(f"{kind} {_counts(c)}" for kind, c in result["other_refusals"].items())
        )
    lines.append(f"waiting until called (minutes, p50 / p90 / max; called within {target}):")
    for code, w in result["waiting_minutes"].items():
        lines.append(
            f"  {code} {w['name']}: {w['p50']:.1f} / {w['p90']:.1f} / {w['max']:.1f}; "
            f"{w['within_target'] * 100:.1f} % (n={w['n']})"
        )
    sla = result["sla_compliance"]
    b, a = result["breaks"], result["alerts"]
    lines += [
        f"breaks: {b['count']}, {b['minutes']:.0f} min ({_counts(b['minutes_by_reason'])}); "
        f"pauses: {', '.join(result['pauses']) or 'none'}",
        f"alerts raised: {_counts(a['raised'])} ({a['open_at_end']} open at the end)",
        f"waiting-time SLA (called within {target}): {wait_sla['within'] * 100:.1f} % of "
        f"{wait_sla['called']} called tickets"
        if wait_sla["within"] is not None
        else "waiting-time SLA: nobody was called",
        f"completion SLA (done within the service's time class): {sla * 100:.1f} %"
        if sla is not None
        else "completion SLA: no finished tickets",
        f"wall time {s['wall_s']:.1f} s ({s['tickets_per_wall_s']:,.0f} tickets per wall second; "
        f"{s['commands']} commands; bench/hub_bench.py measures peak throughput)",
        f"press->reply ms p50/p99/max: {fmt(s['press_to_reply_ms'])}",
        f"NEXT->screen state ms p50/p99/max: {fmt(s['next_to_screen_state_ms'])} "
        f"({s['calls_seen_on_screen']} calls seen)",
        f"integrity: numbers issued twice {i['numbers_issued_twice']}, confirmed tickets lost "
        f"{i['confirmed_tickets_lost']}, tickets called at two counters "
        f"{i['tickets_called_at_two_counters']}",
    ]
    return "\n".join(lines)


def _counts(codes: dict[str, int]) -> str:
    """'quota_full 3, closed 1' or 'none'."""
    return ", ".join(f"{code} {n}" for code, n in sorted(codes.items())) or "none"


def fmt(summary: dict) -> str:
    """'1.2 / 4.5 / 9.9' from a p50/p99/max dict."""
    return " / ".join(
        "-" if summary[k] is None else f"{summary[k]:.1f}" for k in ("p50", "p99", "max")
    )


TERMINAL_HELP = """keys: t SERVICE [KIOSK]  take a ticket (e.g. 't ktp')
      n COUNTER  NEXT   r COUNTER  RECALL   s COUNTER  SKIP   o COUNTER  OPEN/CLOSE   q  quit"""


@click.command("demo")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    default="demo-out",
    show_default=True,
    help="Database, inventory and printed tickets go here.",
)
@click.option(
    "--port",
    "web_port",
    default=8080,
    show_default=True,
    help="The hub's web port (the control page takes the next one).",
)
@click.option(
    "--broker",
    type=click.Choice(["auto", "mosquitto", "embedded"]),
    default="auto",
    show_default=True,
    help="auto: Mosquitto when installed, else the embedded one.",
)
@click.option("--quiet-site", is_flag=True, help="No simulated visitors and officers.")
@click.option(
    "--window/--no-window",
    default=None,
    help="Open the lobby TV as a window (default: when a desktop is available).",
)
@click.option("--run-for", type=float, default=None, help="Stop after this many seconds.")
@click.option(
    "--sites",
    type=click.IntRange(1, 5),
    default=1,
    show_default=True,
    help="More than 1: that many simulated MPPs and their region (PostgreSQL, two tiers of "
    "Mosquitto, the regional web); prints the regional URLs.",
)
def demo(
    *,
    out_dir: str,
    web_port: int,
    broker: str,
    quiet_site: bool,
    window: bool | None,
    run_for: float | None,
    sites: int,
) -> None:
    """Run a whole MPP on this machine: broker, hub, web, kiosks, caller boxes, a TV."""
    from demo.run import DemoSite, has_screen

    setup_logging("WARNING")
    if sites > 1:
        _region_demo(Path(out_dir).resolve() / "region", sites, not quiet_site, run_for)
        return
    site = DemoSite(
        Path(out_dir).resolve(), broker_kind=broker, web_port=web_port, traffic=not quiet_site
    )
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # HUP: the terminal closed
        signal.signal(signum, lambda *_: stop.set())
    say("starting the demo MPP ...")
    tv: subprocess.Popen[bytes] | None = None
    try:
        site.start()
        if window if window is not None else has_screen():
            tv = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "protocol.cli",
                    "display",
                    "--site",
                    str(site.workdir / "site.toml"),
                    "--device",
                    "tv-lobby-1",
                    "--windowed",
                    "--log-level",
                    "WARNING",
                ]
            )
        _tell_where_to_look(site, tv is not None, quiet_site)
        if sys.stdin.isatty():
            say(TERMINAL_HELP)
            threading.Thread(target=_terminal, args=(site, stop), daemon=True).start()
        say("Ctrl-C stops everything.")
        stop.wait(run_for)
    finally:
        # Stop first, then say so: whoever reads our output may be gone (`mpp demo | head`).
        if tv is not None:
            tv.terminate()
            tv.wait(10)
        site.stop()
        say("stopped.")


def _tell_where_to_look(site: object, window: bool, quiet_site: bool) -> None:
    """The broker, the URLs, the login and where the tickets go."""
    from demo.run import DemoSite

    assert isinstance(site, DemoSite) and site.site is not None
    say(f"broker: {site.broker_line}")
    say(
        f"site: {site.site.site.name}; {len(site.kiosks)} kiosks, "
        f"{len(site.callers)} caller boxes (counters open with traffic: "
        f"{'yes' if not quiet_site else 'no'})"
    )
    for name, url in site.urls.items():
        say(f"  {name:<15} {url}")
    say(f"  {'dashboard login':<15} demo / demo-mpp")
    say(f"  {'printed tickets':<15} {site.tickets}")
    say(
        "  lobby TV: "
        + (
            "a window on this desktop"
            if window
            else "no desktop here: open the lobby screen URL above in a browser"
        )
    )


def say(text: str) -> None:
    """click.echo that outlives its reader (`mpp demo | head`): the demo goes on, and stops
    cleanly, when nobody reads its output any more."""
    try:
        click.echo(text)
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)  # later writes, and the exit's flush, go nowhere
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def _terminal(site: object, stop: threading.Event) -> None:
    """Drive the demo from the keyboard: one command per line."""
    from demo.run import DemoSite

    assert isinstance(site, DemoSite)
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        if words[0] == "q":
            stop.set()
            return
        try:
            if words[0] == "t" and len(words) >= 2:
                kiosk = (
                    words[2]
                    if len(words) > 2
                    else next(k.device_id for k in site.kiosks if words[1] in k.services)
                )
                click.echo(site.press(kiosk, words[1]))
            elif words[0] in "nrso" and len(words) == 2:
                button = {"n": "next", "r": "recall", "s": "skip", "o": "open_close"}[words[0]]
                click.echo(site.press(f"caller-{int(words[1]):02d}", button))
            else:
                click.echo(TERMINAL_HELP)
        except (StopIteration, ValueError):
            click.echo(TERMINAL_HELP)


def _region_demo(workdir: Path, sites: int, traffic: bool, run_for: float | None) -> None:
    """`mpp demo --sites N`: N simulated MPPs and the region, until Ctrl-C."""
    from demo.region import DEMO_LOGIN, RegionDemo

    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, lambda *_: stop.set())
    say(
        f"starting {sites} simulated MPPs and their region (PostgreSQL, Mosquitto x{sites + 1}) ..."
    )
    region = RegionDemo(workdir, sites=sites, traffic=traffic).start()
    say("regional web:")
    for name, url in region.urls.items():
        say(f"  {name:<18} {url}")
    say(f"  {'login':<18} {'/'.join(DEMO_LOGIN)}")
    say(f"files: {workdir} (region.toml, each site's site.toml and hub database)")
    say("Ctrl-C stops everything.")
    try:
        stop.wait(run_for)
    finally:
        region.stop()
        say("stopped.")
