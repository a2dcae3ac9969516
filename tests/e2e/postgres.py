"""A throwaway PostgreSQL 15 cluster (Debian's server binaries) in a temporary folder."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.integration.conftest import free_port

# Debian's versioned folder, not on PATH; scripts/system-deps.sh reads the same variable.
BIN = Path(os.environ.get("FRAUDOPS_PG_BIN", "/usr/lib/postgresql/15/bin"))
USER = "fraudops"


@dataclass(frozen=True)
class Cluster:
    """Where the cluster listens; databases are created with `create_database`."""

    port: int
    socket_dir: Path

    def url(self, database: str, driver: str = "postgresql+psycopg2") -> str:
        """A SQLAlchemy URL for `database` (TCP on loopback). SQLAlchemy 2.1 reads a bare
        `postgresql://` as psycopg 3; the project installs psycopg2 (and Prefect asyncpg)."""
        return f"{driver}://{USER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> None:
        """CREATE DATABASE `name`."""
        import psycopg2

        conn = psycopg2.connect(host="127.0.0.1", port=self.port, user=USER, dbname="postgres")
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
        conn.close()

    def count(self, database: str, table: str) -> int:
        """Rows in `table` of `database`."""
        import psycopg2

        conn = psycopg2.connect(host="127.0.0.1", port=self.port, user=USER, dbname=database)
        with conn.cursor() as cur:
            cur.execute(f"SELECT count(*) FROM {table}")
            (n,) = cur.fetchone() or (0,)
        conn.close()
        return int(n)


def _as_owner(args: list[str], owner: str | None) -> list[str]:
    """initdb and postgres refuse to run as root: run them as the `postgres` user then."""
    return ["runuser", "-u", owner, "--", *args] if owner else args


@contextmanager
def throwaway_cluster() -> Iterator[Cluster]:
    """initdb in a temp folder (trust auth, loopback only, fsync off), start it on a free
    port with its socket in that folder; stop and remove it afterwards."""
    if not (BIN / "initdb").exists():
        raise RuntimeError(f"{BIN}/initdb not found: make system-deps installs postgresql-15")
    owner = "postgres" if os.geteuid() == 0 else None
    # Not under pytest's folder: that one is private to root, and the server runs as postgres.
    folder = Path(tempfile.mkdtemp(prefix="fraudops-pg-"))
    if owner:
        shutil.chown(folder, owner)
    data, port = folder / "data", free_port()

    def run(*args: str) -> None:
        subprocess.run(_as_owner(list(args), owner), cwd=folder, check=True, capture_output=True)

    try:
        run(str(BIN / "initdb"), "-D", str(data), "-U", USER, "--auth=trust", "--no-sync")
        options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        log = str(folder / "server.log")
        run(str(BIN / "pg_ctl"), "-D", str(data), "-l", log, "-o", options, "-w", "start")
        yield Cluster(port, folder)
    finally:
        if (data / "postmaster.pid").exists():
            run(str(BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(folder, ignore_errors=True)
