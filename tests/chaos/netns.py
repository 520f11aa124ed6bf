"""A device's own network namespace, joined to the host by a veth pair: its connection to the
broker crosses a real link the test takes down, or makes lose packets at random.

    with device_link() as link:
        kiosk = link.run(lambda: make_kiosk(host=link.host_ip))   # its sockets cross the link
        link.lose(30)                                            # 30 % of packets dropped
"""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest

CLONE_NEWNET = 0x40000000
T = TypeVar("T")


def run(*args: str) -> None:
    """Run one command (AssertionError with its output if it fails)."""
    done = subprocess.run(list(args), check=False, capture_output=True, text=True, timeout=10)
    assert done.returncode == 0, f"{' '.join(args)}: {done.stderr.strip()}"


def ip(*args: str) -> None:
    """Run one iproute2 command (AssertionError with its output if it fails)."""
    run("ip", *args)


def iptables() -> str:
    """The iptables of this machine that works without nf_tables (the test is skipped
    without one: Debian package iptables, see dev.sh)."""
    for name in ("iptables-legacy", "iptables"):
        if shutil.which(name):
            return name
    pytest.skip("packet loss needs iptables (Debian package iptables)")
    raise AssertionError  # not reached


@dataclass(frozen=True)
class Link:
    """A network namespace for one device, joined to the host by a veth pair."""

    namespace: str
    host_side: str
    device_side: str
    host_ip: str
    device_ip: str

    def set(self, up: bool) -> None:
        """Bring the device's end of the link up or down (down: nothing gets through)."""
        ip("netns", "exec", self.namespace, "ip", "link", "set", self.device_side,
           "up" if up else "down")  # fmt: skip

    def lose(self, percent: float) -> None:
        """Drop `percent` % of the packets entering and leaving the device's side, at random
        (iptables' statistic match: this kernel has no netem); 0 ends the loss."""
        table = ("ip", "netns", "exec", self.namespace, iptables())
        for chain in ("INPUT", "OUTPUT"):
            run(*table, "-F", chain)
            if percent > 0:
                rule = ("-m", "statistic", "--mode", "random", "--probability")
                run(*table, "-A", chain, *rule, f"{percent / 100:.4f}", "-j", "DROP")

    def run(self, make: Callable[[], T], timeout: float = 30.0) -> T:
        """Call `make` on a thread inside the namespace; threads it starts (paho's network
        loop) stay there, so every connection they open crosses the link."""
        result: list[Any] = []

        def enter_and_make() -> None:
            try:
                libc = ctypes.CDLL(None, use_errno=True)
                fd = os.open(f"/var/run/netns/{self.namespace}", os.O_RDONLY)
                try:
                    if libc.setns(fd, CLONE_NEWNET) != 0:
                        raise OSError(ctypes.get_errno(), "setns into the test namespace failed")
                finally:
                    os.close(fd)
                result.append(make())
            except BaseException as exc:  # handed to the test thread
                result.append(exc)

        thread = threading.Thread(target=enter_and_make, name=f"in-{self.namespace}")
        thread.start()
        thread.join(timeout)
        assert result, f"nothing made inside {self.namespace} within {timeout}s"
        if isinstance(result[0], BaseException):
            raise result[0]
        return result[0]


@contextmanager
def device_link() -> Iterator[Link]:
    """A namespace and veth pair (root and iproute2 needed; skipped otherwise), removed after."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("a network namespace needs root and iproute2")
    tag = os.getpid() % 100000
    subnet = f"10.231.{tag % 250 + 1}"
    made = Link(f"mpp-chaos-{tag}", f"mpph{tag}", f"mppn{tag}", f"{subnet}.1", f"{subnet}.2")
    ip("netns", "add", made.namespace)
    try:
        ip("link", "add", made.host_side, "type", "veth", "peer", "name", made.device_side,
           "netns", made.namespace)  # fmt: skip
        ip("addr", "add", f"{made.host_ip}/30", "dev", made.host_side)
        ip("link", "set", made.host_side, "up")
        inside = ("netns", "exec", made.namespace, "ip")
        ip(*inside, "addr", "add", f"{made.device_ip}/30", "dev", made.device_side)
        ip(*inside, "link", "set", "lo", "up")
        made.set(up=True)
        yield made
    finally:
        for undo in (["link", "del", made.host_side], ["netns", "del", made.namespace]):
            subprocess.run(["ip", *undo], check=False, capture_output=True, timeout=10)
