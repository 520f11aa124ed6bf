"""How long provisioning the whole example MPP takes, step by step (prints figures).

    .venv/bin/python bench/provision_bench.py [--runs 3]

Runs the real `mpp-provision` commands in-process on examples/banjarbaru.toml (40 devices
and the hub): check, init (site CA, server certificate, 42 random passwords hashed $7$),
broker (mosquitto.conf, passwd, ACL), bundle --all (41 bundles), write-boot for each of the
40 Pis onto its own stand-in boot partition. Then starts Mosquitto from the generated files
and times how long all 41 machines take to log in over TLS (loopback for the hub).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from click.testing import CliRunner

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.figures import figure  # noqa: E402
from broker_config.local import hand_to_mosquitto, site_broker  # noqa: E402
from protocol.brokers import free_port  # noqa: E402
from protocol.mqtt import Bus  # noqa: E402
from protocol.site import load_site  # noqa: E402
from provisioning.cli import main  # noqa: E402
from provisioning.site_secrets import SiteSecrets  # noqa: E402
from provisioning.wheelhouse import package_wheel  # noqa: E402

EXAMPLE = ROOT / "examples" / "banjarbaru.toml"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHk3kJm0b7yP8Qm1u5a1R2m2y0o9Xq8Lh3tV9bS6cQ0d bench"


def run(args: list[str]) -> None:
    result = CliRunner().invoke(main, args)
    if result.exit_code not in (0,):
        raise SystemExit(f"mpp-provision {' '.join(args)} failed:\n{result.output}")


def one_run(top: Path, ports: tuple[int, int], package: Path) -> dict[str, float]:
    """Every step once; seconds per step (the wheels already in the default cache)."""
    site = ["--site", str(EXAMPLE), "--secrets", str(top / "secrets")]
    wheels = ["--package-wheel", str(package)]
    times: dict[str, float] = {}

    def step(name: str, args: list[str]) -> None:
        start = time.perf_counter()
        run(args)
        times[name] = time.perf_counter() - start

    step("check", ["check", str(EXAMPLE)])
    step("init", [*site, "init", "--server", "mpp-server.local"])
    step(
        "broker",
        [*site, "broker", "--out", str(top / "broker"), "--etc", str(top / "broker"),
         "--data-dir", str(top / "data"), "--log-dest", "stderr",
         "--loopback-port", str(ports[0]), "--device-port", str(ports[1]),
         "--device-bind", "127.0.0.1"],
    )  # fmt: skip
    step("bundle --all (41)", [*site, "bundle", "--all", "--out", str(top / "bundles"), *wheels])
    key = top / "key.pub"
    key.write_text(KEY + "\n")
    devices = list(load_site(EXAMPLE).devices)
    start = time.perf_counter()
    for device in devices:
        boot = top / "boot" / device
        boot.mkdir(parents=True)
        (boot / "config.txt").write_text("[all]\n")
        run([*site, "write-boot", device, str(boot), "--ssh-key", str(key), *wheels])
    times[f"write-boot x{len(devices)}"] = time.perf_counter() - start
    times["total provisioning"] = sum(times.values())
    return times


def logins(top: Path, ports: tuple[int, int]) -> float:
    """Seconds from starting 41 Bus connections until all are connected."""
    site = load_site(EXAMPLE)
    store = SiteSecrets.open(top / "secrets")
    hand_to_mosquitto(top / "broker", top / "data")
    with site_broker(top / "broker", ports[0]):
        buses = [
            Bus.for_device(
                site, "hub", port=ports[0], username="hub", password=store.password("hub")
            )
        ]
        for device in site.devices:
            buses.append(
                Bus.for_device(
                    site,
                    device,
                    host="127.0.0.1",
                    port=ports[1],
                    tls_ca=str(top / "secrets" / "ca.crt"),
                    username=device,
                    password=store.password(device),
                )
            )
        start = time.perf_counter()
        for bus in buses:
            bus.start()
        ok = all(bus.wait_connected(30) for bus in buses)
        elapsed = time.perf_counter() - start
        for bus in buses:
            bus.stop()
    if not ok:
        raise SystemExit("not every machine could log in")
    return elapsed


def main_bench() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    results: dict[str, list[float]] = {}
    login_times: list[float] = []
    # The mpp-antrian wheel is built once (bundles of every run share it); the first run also
    # fills the wheel cache, later ones read it.
    package = package_wheel(Path(tempfile.mkdtemp(prefix="mpp-provision-bench-wheel-")))
    for _ in range(args.runs):
        top = Path(tempfile.mkdtemp(prefix="mpp-provision-bench-"))
        top.chmod(0o755)  # the broker drops to the mosquitto user and must read its files
        try:
            ports = (free_port(), free_port())
            for name, seconds in one_run(top, ports, package).items():
                results.setdefault(name, []).append(seconds)
            login_times.append(logins(top, ports))
        finally:
            shutil.rmtree(top, ignore_errors=True)
    print(f"provisioning {EXAMPLE.name}: 40 devices + hub; {args.runs} runs, median (min-max)")
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    for name, values in results.items():
        print(
            f"  {name:<22} {statistics.median(values):7.3f} s"
            f"  ({min(values):.3f}-{max(values):.3f})"
        )
    total = results["total provisioning"]
    figure(
        "provisioning: the whole example MPP (40 devices + hub), median",
        round(statistics.median(total), 2),
        "s",
    )
    print(
        f"  {'41 logins (40 TLS)':<22} {statistics.median(login_times):7.3f} s"
        f"  ({min(login_times):.3f}-{max(login_times):.3f})"
    )


if __name__ == "__main__":
    main_bench()
