"""Run every benchmark and write the summary table at the top of docs/benchmarks.md.

    .venv/bin/python bench/run_all.py [--quick] [--only hub,kiosk]

Each benchmark prints its own report and `FIGURE {...}` lines (bench/figures.py); this script
collects those, adds the simulated day at full speed (`mpp simulate`), and rewrites the table
between the markers in docs/benchmarks.md, with the machine, the date and each figure's target
from the issues. Benchmarks print figures; they are not pass/fail tests.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"
START, END = "<!-- bench/run_all.py: start -->", "<!-- bench/run_all.py: end -->"

# name -> (script, arguments, arguments with --quick)
BENCHES: dict[str, tuple[str, list[str], list[str]]] = {
    "hub": ("bench/hub_bench.py", [], ["--tickets", "2000", "--calls", "500"]),
    "soak": ("bench/hub_soak.py", [], ["--cycles", "5000"]),
    "kiosk": ("bench/kiosk_bench.py", [], []),
    "caller": ("bench/caller_bench.py", [], []),
    "display": ("bench/display_bench.py", [], ["--idle", "20", "--calls", "10"]),
    "web": ("bench/web_bench.py", [], []),
    "featured": ("bench/featured_bench.py", [], ["--rounds", "3"]),
    "provisioning": ("bench/provision_bench.py", [], ["--runs", "1"]),
    "region": ("bench/region_bench.py", [], ["--quick"]),
    "public": ("bench/public_page_bench.py", [], ["--quick"]),
}


def run_bench(script: str, args: list[str]) -> tuple[list[dict], str]:
    """Run one benchmark; its FIGURE lines and its whole output."""
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, script, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    output = done.stdout + done.stderr
    figures = [
        json.loads(line[7:]) for line in done.stdout.splitlines() if line.startswith("FIGURE ")
    ]
    status = "ok" if done.returncode == 0 else f"exit {done.returncode}"
    print(f"  {script}: {status}, {len(figures)} figures, {time.monotonic() - started:.0f} s")
    if done.returncode != 0:
        print(output[-2000:])
    return figures, output


def simulated_day(quick: bool) -> list[dict]:
    """The default simulated day (8,000 visitors, 60 counters) as fast as the machine allows."""
    out = Path(tempfile.mkdtemp(prefix="mpp-sim-bench-"))
    size = ["--visitors", "1500", "--counters", "20"] if quick else []
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "protocol.cli", "simulate", "--out", str(out), *size],
        cwd=ROOT, capture_output=True, text=True, timeout=3600, check=False,
    )  # fmt: skip
    wall = time.monotonic() - started
    report = out / "simulation.json"
    if done.returncode != 0 or not report.exists():
        print(done.stdout[-2000:], done.stderr[-2000:])
        return [{"name": "simulated day", "value": None, "unit": "", "target": None}]
    result = json.loads(report.read_text())
    visitors, counters = result["config"]["visitors"], result["config"]["counters"]
    system, integrity = result["system"], result["integrity"]
    label = f"simulated day ({visitors} visitors, {counters} counters)"
    print(f"  mpp simulate: {wall:.0f} s")
    return [
        {
            "name": f"{label}: wall time at full speed",
            "value": round(system["wall_s"], 1),
            "unit": "s",
            "target": None,
        },
        {
            "name": f"{label}: press->reply p99",
            "value": system["press_to_reply_ms"]["p99"],
            "unit": "ms",
            "target": None,
        },
        {
            "name": f"{label}: NEXT->screen state p99",
            "value": system["next_to_screen_state_ms"]["p99"],
            "unit": "ms",
            "target": None,
        },
        {
            "name": f"{label}: integrity problems (twice / lost / two counters)",
            "value": sum(integrity.values()),
            "unit": "",
            "target": "0",
        },
        {
            "name": f"{label}: SLA compliance",
            "value": round(100 * (result["sla_compliance"] or 0), 1),
            "unit": "%",
            "target": None,
        },
    ]


def table(figures: list[dict], quick: bool) -> str:
    """The markdown block written into docs/benchmarks.md."""
    load = os.getloadavg()[0]
    lines = [
        START,
        "## Summary (written by `bench/run_all.py`" + (", --quick sizes" if quick else "") + ")",
        "",
        f"Machine: {platform.node()}, {platform.machine()}, {os.cpu_count()} cores, "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}; "
        f"date {time.strftime('%Y-%m-%d %H:%M %Z')}; load average at the start {load:.2f}.",
        "",
        "| figure | value | target |",
        "|---|---|---|",
    ]
    for f in figures:
        value = "not measured" if f["value"] is None else f"{f['value']} {f['unit']}".strip()
        lines.append(f"| {f['name']} | {value} | {f['target'] or ''} |")
    lines += ["", "The sections below hold each benchmark's method and earlier runs.", END]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (a few minutes)")
    parser.add_argument(
        "--only", default="", help="comma-separated: " + ",".join(BENCHES) + ",simulate"
    )
    args = parser.parse_args()
    chosen = [n for n in args.only.split(",") if n] or [*BENCHES, "simulate"]
    figures: list[dict] = []
    print(f"running: {', '.join(chosen)}")
    for name in chosen:
        if name == "simulate":
            figures += simulated_day(args.quick)
            continue
        script, full, quick = BENCHES[name]
        got, _output = run_bench(script, quick if args.quick else full)
        figures += got or [
            {"name": f"{name}: benchmark failed", "value": None, "unit": "", "target": None}
        ]
    block = table(figures, args.quick)
    text = DOC.read_text(encoding="utf-8") if DOC.exists() else "# Benchmarks\n"
    if START in text and END in text:
        text = text[: text.index(START)] + block + text[text.index(END) + len(END) :]
    else:
        head, _, rest = text.partition("\n")
        text = (
            f"{head}\n\n{block}\n{rest}"
            if head.startswith("# ")
            else f"# Benchmarks\n\n{block}\n\n{text}"
        )
    DOC.write_text(text, encoding="utf-8")
    print(block)


if __name__ == "__main__":
    main()
