"""A real, throw-away PostgreSQL server for the fleet tests and benchmark (no mocks).

`TempPostgres` runs ``initdb`` into a temporary directory and ``pg_ctl start`` on a free local port,
as a non-root user (PostgreSQL refuses to run as root; tests here and in CI may run as root, so the
server drops to ``postgres`` or ``nobody``), and removes everything on `stop`. The Debian
``postgresql`` package provides the binaries (``make test`` installs it when missing); where they
or psycopg are absent, the fixtures skip with the reason.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest


def find_binary(name: str) -> str | None:
    """``initdb``/``pg_ctl`` on PATH, else the newest ``/usr/lib/postgresql/*/bin`` copy."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(p.split("/")[4]))
    return candidates[-1] if candidates else None


def _server_user() -> pwd.struct_passwd | None:
    """The user the server runs as: the current one, or when root, ``postgres`` / ``nobody``."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise RuntimeError("running as root and there is no 'postgres' or 'nobody' user to run PostgreSQL as")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def why_unavailable() -> str | None:
    """Why a server can't be started here (None when it can)."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed (pip install '.[postgres]'; the test extra has it)"
    if find_binary("initdb") is None or find_binary("pg_ctl") is None:
        return "PostgreSQL is not installed (apt-get install -y postgresql; make test does it)"
    return None


class TempPostgres:
    """One PostgreSQL server in a temporary directory, reachable at `url` until `stop`."""

    def __init__(self, fsync: bool = False) -> None:
        self.fsync = fsync
        self.dir: Path | None = None
        self.port: int | None = None
        self._user = _server_user()

    def _run(self, *args: str) -> None:
        kw = {} if self._user is None else {"user": self._user.pw_uid, "group": self._user.pw_gid}
        env = {**os.environ, "LC_ALL": "C", "LANG": "C"}
        done = subprocess.run(list(args), capture_output=True, text=True, env=env, timeout=120, **kw)
        if done.returncode != 0:
            log = self.dir / "server.log" if self.dir else None
            tail = log.read_text()[-2000:] if log and log.exists() else ""
            raise RuntimeError(f"{' '.join(args[:2])} failed ({done.returncode}): {done.stderr[-2000:]}{tail}")

    def start(self) -> "TempPostgres":
        self.dir = Path(tempfile.mkdtemp(prefix="scope-pg-"))
        if self._user is not None:
            os.chown(self.dir, self._user.pw_uid, self._user.pw_gid)
        data = self.dir / "data"
        self._run(find_binary("initdb") or "initdb", "-D", str(data), "-U", "scope", "--auth=trust",
                  "-E", "UTF8", "--locale=C", "--no-sync")
        self.port = _free_port()
        opts = (f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c max_connections=200"
                f" -c fsync={'on' if self.fsync else 'off'}")
        self._run(find_binary("pg_ctl") or "pg_ctl", "-D", str(data), "-l", str(self.dir / "server.log"),
                  "-o", opts, "-w", "-t", "60", "start")
        return self

    @property
    def url(self) -> str:
        return f"postgresql://scope@127.0.0.1:{self.port}/postgres"

    def new_database(self) -> str:
        """A fresh, empty database on this server; returns its URL."""
        import psycopg

        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql://scope@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        if self.dir is None:
            return
        try:
            self._run(find_binary("pg_ctl") or "pg_ctl", "-D", str(self.dir / "data"), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def __enter__(self) -> "TempPostgres":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[TempPostgres]:
    """A PostgreSQL server for the whole test session (skips, with the reason, where none can run)."""
    reason = why_unavailable()
    if reason:
        pytest.skip(reason)
    with TempPostgres() as server:
        yield server


@pytest.fixture
def pg_url(postgres_server: TempPostgres) -> str:
    """A fresh empty database for one test."""
    return postgres_server.new_database()
