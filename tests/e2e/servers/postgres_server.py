"""A throw-away PostgreSQL server for tests: Debian's server binaries (package postgresql), a new cluster in a
temporary folder, password authentication (SCRAM) only, listening on a free loopback port."""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from servers.ui_server import free_port

# Where Debian installs each major version's server binaries, as <version>/bin. Point it elsewhere (e.g. at an empty
# folder) to see the tests that need a server skip.
SERVER_ROOT = Path(os.environ.get("TEST_POSTGRES_ROOT", "/usr/lib/postgresql"))
SKIP_REASON = "needs the PostgreSQL server: Debian package postgresql; .ci/run installs it"
# initdb refuses to run as root: as root, the server runs as the system user the Debian package creates.
SYSTEM_USER = "postgres"


def server_binaries(root: Path = SERVER_ROOT) -> Path | None:
    """The bin folder of the newest PostgreSQL version under `root` that has initdb and pg_ctl, or None."""
    versions = [
        folder for folder in root.glob("*/bin") if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file()
    ]
    if not versions:
        return None
    return max(versions, key=lambda folder: [int(n) for n in re.findall(r"\d+", folder.parent.name)] or [0])


@dataclass
class PostgresServer:
    """One cluster: `start` runs initdb and pg_ctl start, `stop` stops the server and deletes the cluster."""

    binaries: Path
    port: int
    username: str = "daily_bids"
    host: str = "127.0.0.1"

    def __post_init__(self):
        self.password = secrets.token_urlsafe(24)
        # Not pytest's tmp_path (nor $TMPDIR, as root): its parents are mode 700 and owned by root, where the postgres
        # user cannot reach.
        self.folder = Path(tempfile.mkdtemp(prefix="bids-postgres-", dir="/tmp" if os.geteuid() == 0 else None))
        self.data = self.folder / "data"
        self.log = self.folder / "server.log"

    def _command(self, *args: str) -> list[str]:
        as_system_user = ["runuser", "-u", SYSTEM_USER, "--"] if os.geteuid() == 0 else []
        return [*as_system_user, *args]

    def _run(self, what: str, *args: str, timeout: float = 120) -> None:
        done = subprocess.run(self._command(*args), capture_output=True, text=True, timeout=timeout, check=False)
        assert done.returncode == 0, (
            f"{what} failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}\n{self.log_tail()}"
        )

    def start(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.folder, SYSTEM_USER, SYSTEM_USER)
        password_file = self.folder / "password"
        password_file.write_text(self.password + "\n")
        if os.geteuid() == 0:
            shutil.chown(password_file, SYSTEM_USER, SYSTEM_USER)
        try:
            # --no-locale: the cluster does not depend on the locales the machine has generated.
            self._run(
                "initdb",
                str(self.binaries / "initdb"),
                "-D",
                str(self.data),
                "-U",
                self.username,
                "--auth=scram-sha-256",
                f"--pwfile={password_file}",
                "--encoding=UTF8",
                "--no-locale",
                "--no-instructions",
            )
        finally:
            password_file.unlink()
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(
                f"\n# {__name__}: loopback TCP only, the Unix socket in the cluster's folder\n"
                f"listen_addresses = '{self.host}'\nport = {self.port}\n"
                f"unix_socket_directories = '{self.folder}'\n"
            )
        self._run(
            "pg_ctl start",
            str(self.binaries / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-w",
            "-t",
            "60",
            "start",
        )

    def stop(self) -> None:
        """Stops the server, if one runs (fast: open connections are closed), and deletes the cluster. A server that
        does not stop keeps its folder, for its log."""
        if (self.data / "postmaster.pid").exists():  # also after a start that timed out
            self._run(
                "pg_ctl stop",
                str(self.binaries / "pg_ctl"),
                "-D",
                str(self.data),
                "-m",
                "fast",
                "-w",
                "-t",
                "60",
                "stop",
            )
        shutil.rmtree(self.folder)

    def log_tail(self, lines: int = 40) -> str:
        if not self.log.exists():
            return "(no server log)"
        text = self.log.read_text(errors="replace").splitlines()
        return f"--- last {lines} lines of {self.log} ---\n" + "\n".join(text[-lines:])

    def connect(self, database: str = "postgres"):
        import psycopg2  # installed with dagster-postgres

        return psycopg2.connect(
            host=self.host,
            port=self.port,
            user=self.username,
            password=self.password,
            dbname=database,
            connect_timeout=10,
        )

    def instance_env(self, database: str) -> dict[str, str]:
        """The variables platform/dagster-postgres.yaml reads, for an instance in `database` on this server."""
        return {
            "DAGSTER_PG_HOST": self.host,
            "DAGSTER_PG_PORT": str(self.port),
            "DAGSTER_PG_USERNAME": self.username,
            "DAGSTER_PG_PASSWORD": self.password,
            "DAGSTER_PG_DB": database,
        }

    def create_database(self, name: str) -> None:
        connection = self.connect()
        try:
            connection.autocommit = True  # CREATE DATABASE cannot run inside a transaction
            with connection.cursor() as cursor:
                cursor.execute(f'CREATE DATABASE "{name}"')
        finally:
            connection.close()


@contextmanager
def running_server(database: str) -> Iterator[PostgresServer]:
    """A server of its own on a free loopback port, with an empty `database`; stopped and deleted afterwards. Skips
    the test, naming the package, where the server binaries are not installed."""
    binaries = server_binaries()
    if binaries is None:
        pytest.skip(SKIP_REASON)
    server = PostgresServer(binaries, port=free_port())
    try:
        server.start()
        server.create_database(database)
        yield server
    finally:
        server.stop()
