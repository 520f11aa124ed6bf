"""`mpp simulate`: a busy MPP day through the real system, with a report and a chart."""

from __future__ import annotations

import json
import sys
import tempfile
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
    out_dir: str | None,
    broker: str,
) -> None:
    """Play a day at a busy MPP through the broker, hub and database; print what happened."""
    from demo.simulate import SimConfig, Simulation

    setup_logging("WARNING")
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
    lines = [
        f"tickets: issued {t['issued']}, served {t['served']}, no-show {t['no_show']}, "
        f"refused {json.dumps(t['refused'])}",
        "waiting (minutes, p50/p90/max) per service:",
    ]
    for code, w in result["waiting_minutes"].items():
        lines.append(f"  {code}: {w['p50']:.1f} / {w['p90']:.1f} / {w['max']:.1f}  (n={w['n']})")
    sla = result["sla_compliance"]
    lines += [
        f"SLA compliance (done within the service's time class): {sla * 100:.1f} %"
        if sla is not None
        else "SLA compliance: no finished tickets",
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


def fmt(summary: dict) -> str:
    """'1.2 / 4.5 / 9.9' from a p50/p99/max dict."""
    return " / ".join(
        "-" if summary[k] is None else f"{summary[k]:.1f}" for k in ("p50", "p99", "max")
    )
