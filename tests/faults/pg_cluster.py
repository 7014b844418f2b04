"""A private PostgreSQL cluster (initdb into a temporary folder, on a free port) that a
test may stop and restart; the shared server at 127.0.0.1:5432 is never touched."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tests.acceptance.harness import free_port

REQUIRE_ENV = "REELSERVE_REQUIRE_POSTGRES"
INITDB_ARGS = ("-U", "postgres", "-A", "trust", "--no-sync")


def postgres_bin() -> Path | None:
    """The newest /usr/lib/postgresql/*/bin holding initdb and pg_ctl, if any."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return (
        Path(found[-1]).parent if found and Path(found[-1]).with_name("initdb").exists() else None
    )


def _as_postgres_user() -> list[str]:
    """PostgreSQL refuses to run as root: run its tools as the ``postgres`` user then."""
    if os.geteuid() != 0:
        return []
    runuser = shutil.which("runuser")
    assert runuser, "running as root needs runuser to start PostgreSQL as 'postgres'"
    return [runuser, "-u", "postgres", "--"]


@dataclass
class PgCluster:
    bin: Path
    root: Path
    port: int

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _ctl(self, *args: str) -> None:
        subprocess.run(
            [*_as_postgres_user(), str(self.bin / "pg_ctl"), "-D", str(self.data), *args],
            check=True,
            capture_output=True,
            timeout=120,
        )

    def init(self) -> PgCluster:
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        subprocess.run(
            [*_as_postgres_user(), str(self.bin / "initdb"), "-D", str(self.data), *INITDB_ARGS],
            check=True,
            capture_output=True,
            timeout=120,
        )
        return self

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} -c fsync=off"
        self._ctl("start", "-w", "-l", str(self.root / "server.log"), "-o", options)

    def stop(self, mode: str = "fast") -> None:
        self._ctl("stop", "-w", "-m", mode)

    def destroy(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


def new_cluster() -> PgCluster | None:
    """A fresh cluster (not started) in its own folder under the system temp folder,
    which the ``postgres`` user can reach (pytest's tmp_path may not be)."""
    found = postgres_bin()
    if found is None:
        return None
    root = Path(tempfile.mkdtemp(prefix="reelserve-pg-"))
    return PgCluster(found, root, free_port()).init()
