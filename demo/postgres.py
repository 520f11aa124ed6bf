"""A throwaway PostgreSQL cluster on this machine, from Debian's packages (tests, demo, bench).

`initdb` and `postgres` refuse to run as root: as root the cluster belongs to the `postgres`
system user (started through `runuser`), otherwise to whoever runs this. It listens on a free
loopback port and a private socket directory, and is removed on `close()`.

    with LocalPostgres() as pg:
        conn = psycopg.connect(pg.dsn("postgres"))
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from protocol.brokers import free_port, wait_for_port
from protocol.errors import MppError

SYSTEM_USER = "postgres"


class PostgresError(MppError, RuntimeError):
    """The local PostgreSQL could not be set up or started."""


def pg_bin() -> Path:
    """The directory of Debian's initdb/pg_ctl (the newest installed version)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version)
    if not found:
        raise PostgresError(
            "PostgreSQL is not installed; run 'apt-get install postgresql' (./dev.sh test does)"
        )
    return Path(found[-1]).parent


def _version(path: str) -> int:
    try:
        return int(Path(path).parent.parent.name)
    except ValueError:
        return 0


class LocalPostgres:
    """A PostgreSQL cluster in a temporary directory; `stop`/`start` keep its data and port."""

    def __init__(self, *, durable: bool = False, port: int | None = None) -> None:
        self.bin = pg_bin()
        self.port = port or free_port()
        self.durable = durable  # False: no fsync (tests); True: as a server would run
        self.root = Path(tempfile.mkdtemp(prefix="mpp-pg-"))
        self.data = self.root / "data"
        self.sockets = self.root / "run"
        self.log_path = self.root / "postgres.log"
        self.as_root = os.geteuid() == 0
        self.user = SYSTEM_USER if self.as_root else pwd.getpwuid(os.geteuid()).pw_name
        self._initialised = False

    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        command = [str(a) for a in args]
        if self.as_root:
            command = ["runuser", "-u", SYSTEM_USER, "--", *command]
        return subprocess.run(command, check=False, capture_output=True, text=True, timeout=timeout)

    def _init(self) -> None:
        self.sockets.mkdir(parents=True)
        if self.as_root:
            self.root.chmod(0o755)
            entry = pwd.getpwnam(SYSTEM_USER)
            for path in (self.root, self.sockets):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        done = self._run(
            self.bin / "initdb",
            "-D",
            self.data,
            "-U",
            self.user,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C.UTF-8",
            "--no-sync",
        )
        if done.returncode != 0:
            raise PostgresError(f"initdb failed: {done.stderr.strip() or done.stdout.strip()}")
        settings = [
            "listen_addresses = '127.0.0.1'",
            f"port = {self.port}",
            f"unix_socket_directories = '{self.sockets}'",
            "max_connections = 100",
            "shared_buffers = 128MB",
        ]
        if not self.durable:
            settings += ["fsync = off", "synchronous_commit = off", "full_page_writes = off"]
        with (self.data / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.write("\n# mpp\n" + "\n".join(settings) + "\n")
        self._initialised = True

    def start(self, timeout: float = 30) -> LocalPostgres:
        """Create the cluster on first use, start it, wait until it takes connections."""
        if not self._initialised:
            self._init()
        done = self._run(
            self.bin / "pg_ctl",
            "-D",
            self.data,
            "-l",
            self.log_path,
            "-w",
            "-t",
            "30",
            "start",
            timeout=timeout + 5,
        )
        if done.returncode != 0 or not wait_for_port("127.0.0.1", self.port, timeout):
            raise PostgresError(f"PostgreSQL did not start: {done.stdout}{done.stderr}{self.log()}")
        return self

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (`fast`: roll back and end sessions; `immediate`: as a crash)."""
        if self._initialised and (self.data / "postmaster.pid").exists():
            self._run(self.bin / "pg_ctl", "-D", self.data, "-m", mode, "-w", "stop")

    def restart(self) -> None:
        """Stop and start again on the same port with the same data."""
        self.stop()
        self.start()

    def dsn(self, dbname: str = "postgres") -> str:
        """A libpq connection string for database `dbname` (TCP on loopback)."""
        return f"host=127.0.0.1 port={self.port} user={self.user} dbname={dbname}"

    def pid(self) -> int | None:
        """The postmaster's process id while the server runs (its backends are its children)."""
        with contextlib.suppress(OSError, ValueError, IndexError):
            return int((self.data / "postmaster.pid").read_text().split()[0])
        return None

    def log(self) -> str:
        """The server's log so far."""
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")
        return ""

    def close(self) -> None:
        """Stop the server and delete the cluster."""
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> LocalPostgres:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
