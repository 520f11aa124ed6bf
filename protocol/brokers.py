"""Start a local MQTT broker: real Mosquitto for tests, benchmarks and the demo, or an
embedded Python broker (amqtt) for the demo on a machine without Mosquitto.

with Mosquitto() as broker:          # a free 127.0.0.1 port, config generated in a temp dir
    bus = Bus("site", "kiosk-1", "kiosk", port=broker.port)
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from protocol.errors import MppError

TEST_CONFIG = """\
listener {port} {host}
allow_anonymous true
max_queued_messages 100000
max_inflight_messages 100
max_packet_size 65536
set_tcp_nodelay true
persistence {persistence}
persistence_location {workdir}/
log_dest stderr
log_type error
log_type warning
log_type notice
{extra}
"""


class BrokerError(MppError, RuntimeError):
    """The local broker could not be started."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def wait_for_port(host: str, port: int, timeout: float) -> bool:
    """True once something accepts TCP connections on host:port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
            return True
        time.sleep(0.02)
    return False


class Mosquitto:
    """A mosquitto process on loopback with a generated config; restartable, keeps its port."""

    def __init__(
        self,
        port: int | None = None,
        *,
        host: str = "127.0.0.1",
        persistence: bool = False,
        extra: str = "",
        config: str | None = None,
        workdir: str | Path | None = None,
        own_session: bool = False,
    ) -> None:
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not Path(binary).exists():
            raise BrokerError(
                "mosquitto is not installed; run 'apt-get install mosquitto' (or use the demo's "
                "embedded broker)"
            )
        self.binary = binary
        self.host = host
        self.port = port or free_port(host)
        self._tmp = None if workdir else tempfile.TemporaryDirectory(prefix="mpp-mosquitto-")
        self.workdir = Path(workdir or self._tmp.name)  # type: ignore[union-attr]
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path = self.workdir / "mosquitto.conf"
        text = config or TEST_CONFIG.format(
            port=self.port,
            host=host,
            persistence="true" if persistence else "false",
            workdir=self.workdir,
            extra=extra,
        )
        self.config_path.write_text(text)
        self.log_path = self.workdir / "mosquitto.log"
        self.process: subprocess.Popen[bytes] | None = None
        # In a session of its own a terminal's Ctrl-C does not reach the broker: whoever
        # started it stops it last, after the clients it serves.
        self.own_session = own_session

    def start(self, timeout: float = 5.0) -> Mosquitto:
        """Start the broker and wait until it accepts connections."""
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [self.binary, "-c", str(self.config_path)],
            stdout=log,
            stderr=log,
            start_new_session=self.own_session,
        )
        log.close()
        if not wait_for_port(self.host, self.port, timeout):
            self.stop()
            raise BrokerError(f"mosquitto did not start on {self.host}:{self.port}: {self.log()}")
        return self

    def stop(self, kill: bool = False) -> None:
        """Stop the broker (SIGTERM, or SIGKILL with kill=True)."""
        if self.process is None:
            return
        if kill:
            self.process.kill()
        else:
            self.process.terminate()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        self.process = None

    def restart(self, down_for: float = 0.0) -> None:
        """Stop, stay down for `down_for` seconds, start again on the same port."""
        self.stop()
        time.sleep(down_for)
        self.start()

    def reload(self) -> None:
        """SIGHUP: reread password and ACL files without dropping clients."""
        if self.process is not None:
            self.process.send_signal(1)

    def log(self) -> str:
        """What the broker wrote to its log so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def close(self) -> None:
        """Stop and remove the temporary directory."""
        self.stop()
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> Mosquitto:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


class EmbeddedBroker:
    """An MQTT 3.1.1 broker inside this process (amqtt), for the demo when Mosquitto is not
    installed. Always bound to 127.0.0.1 (amqtt's own default would be 0.0.0.0)."""

    def __init__(self, port: int | None = None, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = port or free_port(host)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._broker: Any = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def start(self, timeout: float = 10.0) -> EmbeddedBroker:
        """Run the broker on its own thread and event loop; wait until it accepts clients."""
        self._thread = threading.Thread(target=self._run, name="embedded-broker", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout) or self._error is not None:
            raise BrokerError(f"embedded broker did not start: {self._error}")
        return self

    def _run(self) -> None:
        from amqtt.broker import Broker

        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}
            },
        }
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)

        async def boot() -> None:
            self._broker = Broker(config)
            await self._broker.start()

        try:
            self._loop.run_until_complete(boot())
        except BaseException as exc:  # reported to start()
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        self._loop.run_forever()

    def stop(self) -> None:
        """Shut the broker down and end its thread."""
        if self._loop is None or self._broker is None:
            return
        future = asyncio.run_coroutine_threadsafe(self._broker.shutdown(), self._loop)
        with contextlib.suppress(Exception):
            future.result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        self._loop = None

    close = stop

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
