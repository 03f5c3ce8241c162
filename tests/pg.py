"""A throw-away PostgreSQL server from Debian's package, for the tests that share a database between processes.

``initdb`` into a temp folder owned by the ``postgres`` user (the server refuses to run as root), started on
a free loopback port with its socket in that folder, stopped (fast, then immediate) at teardown. Where the
package is missing and cannot be installed, ``PostgresServer.skip_reason()`` says why and the tests skip.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.net import free_port

START_TIMEOUT_S = 60.0


def _bin_dir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(found[-1]).parent if found else None


def _install() -> str | None:
    """Install Debian's postgresql when it is missing and we are root; the reason it is not there, or None."""
    if _bin_dir() is not None:
        return None
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return "PostgreSQL is not installed (apt-get install -y postgresql)"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        subprocess.run(["apt-get", "install", "-y", "-qq", "postgresql"], env=env, check=True, timeout=600,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    except (subprocess.SubprocessError, OSError) as exc:
        return f"PostgreSQL could not be installed (apt-get install -y postgresql): {exc}"
    return None if _bin_dir() is not None else "PostgreSQL is not installed (apt-get install -y postgresql)"


class PostgresServer:
    """One PostgreSQL cluster in a temp folder, listening on 127.0.0.1 only."""

    def __init__(self) -> None:
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="mof-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.bin = _bin_dir()
        self.user = "postgres"

    @staticmethod
    def skip_reason() -> str | None:
        """Why no server can be started here, or None."""
        reason = _install()
        if reason:
            return reason
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                return "no 'postgres' system user to run the server as (the package creates it)"
            if shutil.which("runuser") is None:
                return "runuser is missing: it runs the server as the postgres user"
        return None

    def _run(self, *args: str, timeout: float = 120.0) -> None:
        assert self.bin is not None
        cmd = [str(self.bin / args[0]), *args[1:]]
        if os.geteuid() == 0:  # the server refuses to run as root
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        subprocess.run(cmd, check=True, timeout=timeout, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def start(self) -> None:
        """initdb, then start and wait until it accepts connections."""
        if os.geteuid() == 0:
            entry = pwd.getpwnam(self.user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        else:
            self.user = pwd.getpwuid(os.geteuid()).pw_name
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        opts = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", opts, "-w", "-t", "60", "start")
        deadline = time.monotonic() + START_TIMEOUT_S
        import psycopg

        while True:
            try:
                with psycopg.connect(self.admin_dsn, connect_timeout=2):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    @property
    def admin_dsn(self) -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres"

    def create_database(self, name: str) -> str:
        """A fresh database; its SQLAlchemy URL."""
        import psycopg

        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        """Stop the server and remove its folder."""
        with contextlib.suppress(Exception):
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "20", "stop", timeout=40)
        with contextlib.suppress(Exception):
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop", timeout=20)
        shutil.rmtree(self.root, ignore_errors=True)


_counter = iter(range(1, 1_000_000))


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    """A real PostgreSQL for the session (skipped, with the reason, where it cannot be had)."""
    reason = PostgresServer.skip_reason()
    if reason:
        pytest.skip(reason)
    server = PostgresServer()
    try:
        server.start()
    except (subprocess.SubprocessError, OSError) as exc:
        server.stop()
        pytest.skip(f"PostgreSQL did not start: {exc}")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg_url(pg_server: PostgresServer) -> str:
    """A fresh database on the session's server."""
    return pg_server.create_database(f"t{os.getpid()}_{next(_counter)}")
