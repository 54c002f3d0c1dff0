"""Throwaway PostgreSQL 15 clusters on loopback for the test suite.

A cluster lives in a temporary directory, listens on 127.0.0.1 on a free port,
and is removed on ``stop()``. As root the server runs as the ``postgres`` system
user (initdb refuses root). Nothing here sleeps blindly: readiness is polled
with a deadline.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.net import free_port
from tests.support.wait import wait_for

PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))


def _run_as() -> list[str]:
    if os.geteuid() != 0:
        return []
    return ["runuser", "-u", "postgres", "--"]


@dataclass
class PgCluster:
    """One PostgreSQL cluster. ``settings`` go to postgresql.conf as given."""

    settings: dict[str, str] = field(default_factory=dict)
    superuser: str = "postgres"
    password: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    port: int = 0
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="loomworks-pg-")))

    @property
    def datadir(self) -> Path:
        return self.root / "data"

    @property
    def logfile(self) -> Path:
        return self.root / "server.log"

    @property
    def dsn(self) -> str:
        return (f"host=127.0.0.1 port={self.port} user={self.superuser} "
                f"password={self.password} dbname=postgres")

    @property
    def env(self) -> dict[str, str]:
        """libpq environment for client tools (psql, createdb, Odoo's DB_* mapping)."""
        return {
            **os.environ,
            "PGHOST": "127.0.0.1",
            "PGPORT": str(self.port),
            "PGUSER": self.superuser,
            "PGPASSWORD": self.password,
            "PGDATABASE": "postgres",
        }

    def _chown(self, path: Path) -> None:
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(path, pw.pw_uid, pw.pw_gid)

    def pg_ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        cmd = [*_run_as(), str(PG_BIN / "pg_ctl"), "-D", str(self.datadir), *args]
        return subprocess.run(cmd, check=check, capture_output=True, text=True)

    def init(self) -> PgCluster:
        self.root.chmod(0o755)
        self._chown(self.root)
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.password + "\n")
        self._chown(pwfile)
        subprocess.run(
            [*_run_as(), str(PG_BIN / "initdb"), "-D", str(self.datadir), "-U", self.superuser,
             "--auth=scram-sha-256", f"--pwfile={pwfile}", "--data-checksums", "-E", "UTF8",
             "--locale=C.UTF-8"],
            check=True, capture_output=True, text=True,
        )
        pwfile.unlink()
        return self

    def write_settings(self) -> None:
        if not self.port:
            self.port = free_port()
        lines = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.root}'",
            "fsync": "on",
            **self.settings,
        }
        conf = self.datadir / "postgresql.auto.conf"
        conf.write_text("".join(f"{k} = {v}\n" for k, v in lines.items()))
        self._chown(conf)

    def start(self, timeout: float = 30) -> PgCluster:
        if not self.datadir.exists():
            self.init()
        self.write_settings()
        self.pg_ctl("-l", str(self.logfile), "-w", "-t", str(int(timeout)), "start")
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 30) -> None:
        def ready() -> bool:
            r = subprocess.run(
                [str(PG_BIN / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-q"],
                check=False,
            )
            return r.returncode == 0

        wait_for(ready, timeout, f"PostgreSQL on 127.0.0.1:{self.port}")

    def stop(self, mode: str = "fast") -> None:
        if (self.datadir / "postmaster.pid").exists():
            self.pg_ctl("-m", mode, "-w", "stop", check=False)

    def kill9(self) -> None:
        pid = int((self.datadir / "postmaster.pid").read_text().split()[0])
        os.kill(pid, 9)

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def psql(self, sql: str, db: str = "postgres") -> str:
        r = subprocess.run(
            [str(PG_BIN / "psql"), "-XAtq", "-v", "ON_ERROR_STOP=1", "-d", db, "-c", sql],
            env=self.env, check=True, capture_output=True, text=True,
        )
        return r.stdout.strip()
