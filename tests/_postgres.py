"""A throwaway PostgreSQL server for tests, started and stopped by the test itself (Debian's postgresql binaries,
as ``.ci/start_postgres.sh`` uses them): its own data folder under a temporary directory, a free port on
127.0.0.1, the role ``nas`` (password ``nas``, may create databases). :meth:`PostgresServer.stop` and
:meth:`PostgresServer.start` stop and restart exactly this server (``pg_ctl -D DIR``: the postmaster of this data
folder, by the PID in its ``postmaster.pid``), so a test can take the database away mid-search.

:func:`start_postgres` returns ``None`` (the caller skips) when no server can be started here: no PostgreSQL
binaries, not root (the server runs as the ``postgres`` user), or no psycopg driver.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

__all__ = ["PostgresServer", "start_postgres"]


def _bindir() -> str | None:
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda d: int(Path(d).parent.name)
                  if Path(d).parent.name.isdigit() else 0)
    for d in reversed(dirs):
        if os.access(f"{d}/initdb", os.X_OK) and os.access(f"{d}/pg_ctl", os.X_OK):
            return d
    initdb = shutil.which("initdb")
    return str(Path(initdb).resolve().parent) if initdb and shutil.which("pg_ctl") else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresServer:
    """One server: ``url`` (of the database ``nas``), ``new_database()`` for a fresh one, ``stop()``/``start()``."""

    def __init__(self, bindir: str, root: Path) -> None:
        self.bindir, self.root = bindir, root
        self.data = root / "data"
        self.port = _free_port()

    def _as_postgres(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["runuser", "-u", "postgres", "--", *args], capture_output=True, text=True,
                              check=check, timeout=120)

    def init(self) -> None:
        shutil.chown(self.root, "postgres", "postgres")
        os.chmod(self.root, 0o700)
        self._as_postgres(f"{self.bindir}/initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust",
                          "-E", "UTF8", "--no-locale")
        (self.data / "pg_hba.conf").write_text("local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n")
        self.start()
        self._psql("CREATE ROLE nas LOGIN CREATEDB PASSWORD 'nas'")
        self._psql("CREATE DATABASE nas OWNER nas")

    def _psql(self, sql: str) -> None:
        self._as_postgres(f"{self.bindir}/psql", "-h", str(self.root), "-p", str(self.port), "-U", "postgres",
                          "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-qAt", "-c", sql)

    def start(self) -> None:
        """Start (or restart) the server and wait until it accepts connections."""
        self._as_postgres(f"{self.bindir}/pg_ctl", "-D", str(self.data), "-l", str(self.root / "postgres.log"),
                          "-w", "-t", "60", "-o", f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} "
                          "-c fsync=off", "start")

    def stop(self) -> None:
        """Stop the server now (``-m fast``: open connections are cut, as when a database host goes away)."""
        self._as_postgres(f"{self.bindir}/pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop", check=False)

    @property
    def url(self) -> str:
        return self.url_of("nas")

    def url_of(self, database: str) -> str:
        return f"postgresql+psycopg://nas:nas@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A fresh, empty database owned by ``nas``; returns its URL."""
        name = f"t_{uuid.uuid4().hex[:12]}"
        self._psql(f"CREATE DATABASE {name} OWNER nas")
        return self.url_of(name)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def start_postgres() -> PostgresServer | None:
    """A running server, or ``None`` when none can be started here (see the module docstring)."""
    bindir = _bindir()
    if bindir is None or os.geteuid() != 0 or shutil.which("runuser") is None:
        return None
    try:
        import psycopg  # noqa: F401 - the store's driver
    except ImportError:
        return None
    try:
        subprocess.run(["id", "-u", "postgres"], capture_output=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    server = PostgresServer(bindir, Path(tempfile.mkdtemp(prefix="nas-test-pg-")))
    try:
        server.init()
    except (OSError, subprocess.SubprocessError):
        server.remove()
        return None
    return server
