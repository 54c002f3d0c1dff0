"""Throwaway PostgreSQL 15 clusters on loopback, and the image's WAL archiving scripts
(postgres/bin) run on the host against them.

A cluster lives in a temporary directory, listens on 127.0.0.1 on a free port,
and is removed on ``destroy()``. As root the server runs as the ``postgres`` system
user (initdb refuses root). Nothing here sleeps blindly: readiness is polled
with a deadline.
"""

from __future__ import annotations

import gzip
import os
import pwd
import re
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.net import free_port
from tests.support.wait import wait_for

PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))
REPO = Path(__file__).resolve().parents[2]
ARCHIVE_WAL = REPO / "postgres" / "bin" / "archive-wal"
VERIFY = REPO / "postgres" / "bin" / "pg-verify-archive"
LIB_ENV = {"LOOMWORKS_LIB": str(REPO / "docker" / "lib")}
SEGMENT = 16 * 1024 * 1024


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
        self.pg_ctl("-l", str(self.root / "server.log"), "-w", "-t", str(int(timeout)), "start")
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

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def psql(self, sql: str, db: str = "postgres") -> str:
        r = subprocess.run(
            [str(PG_BIN / "psql"), "-XAtq", "-v", "ON_ERROR_STOP=1", "-d", db, "-c", sql],
            env=self.env, check=True, capture_output=True, text=True,
        )
        return r.stdout.strip()


# --- WAL archiving with postgres/bin on the host -------------------------------------


def pg_ids() -> tuple[int, int]:
    pw = pwd.getpwnam("postgres")
    return pw.pw_uid, pw.pw_gid


def make_archive_dir(parent: Path | None = None) -> Path:
    """A 0700 directory owned by the postgres user (like /wal_archive in the image)."""
    d = Path(tempfile.mkdtemp(prefix="lwtest-arch-", dir=parent))
    os.chown(d, *pg_ids())
    d.chmod(0o700)
    # the cluster's server user must be able to reach it
    for p in d.parents:
        if p == Path("/tmp") or p == Path("/"):
            break
        p.chmod(p.stat().st_mode | 0o111)
    return d


def run_as_postgres(*cmd: str | Path, env: dict[str, str] | None = None,
                    check: bool = False) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **LIB_ENV, **(env or {})}
    return subprocess.run([*_run_as(), *map(str, cmd)], env=full_env, capture_output=True, text=True,
                          check=check)


def archive(src: Path, name: str, archive_dir: Path, ENV_PATH: str | None = None,
            **env: str) -> subprocess.CompletedProcess:
    """Run archive-wal as postgres; ENV_PATH replaces PATH for the script only."""
    prefix = ["env", f"PATH={ENV_PATH}"] if ENV_PATH else []
    return run_as_postgres(*prefix, ARCHIVE_WAL, src, name, archive_dir, env=env)


def verify_archive(archive_dir: Path, backup_dir: Path | None = None) -> subprocess.CompletedProcess:
    env = {"WAL_ARCHIVE_DIR": str(archive_dir), "BACKUP_DIR": str(backup_dir or archive_dir / "none")}
    return run_as_postgres(VERIFY, env=env)


def gz_files(d: Path) -> list[Path]:
    return sorted(p for p in d.iterdir() if p.name.endswith(".gz"))


def decompressed(p: Path) -> bytes:
    with gzip.open(p, "rb") as f:
        return f.read()


def archive_settings(archive_dir: Path, **extra: str) -> dict[str, str]:
    return {
        "wal_level": "replica",
        "archive_mode": "on",
        "archive_timeout": "300",
        # the server's environment has no LOOMWORKS_LIB: the command sets it for the script
        "archive_command": f"'env LOOMWORKS_LIB={REPO}/docker/lib {ARCHIVE_WAL} %p %f {archive_dir}'",
        **extra,
    }


def archiver_stats(c: PgCluster) -> dict[str, str]:
    row = c.psql("SELECT archived_count, failed_count, coalesce(last_archived_wal, ''),"
                 " coalesce(last_failed_wal, '') FROM pg_stat_archiver")
    keys = ("archived_count", "failed_count", "last_archived_wal", "last_failed_wal")
    return dict(zip(keys, row.split("|"), strict=True))


def ready_files(c: PgCluster) -> list[str]:
    status = c.datadir / "pg_wal" / "archive_status"
    return sorted(p.name for p in status.glob("*.ready"))


def switch_wal(c: PgCluster) -> str:
    """Write something, switch, and return the name of the segment that was closed."""
    return c.psql("SELECT pg_walfile_name(pg_switch_wal())")


def wait_archived(c: PgCluster, name: str, timeout: float = 30) -> None:
    def done() -> bool:
        assert re.fullmatch(r"[0-9A-F]{24}", name)
        return c.psql(f"SELECT last_archived_wal >= '{name}' FROM pg_stat_archiver") == "t"  # noqa: S608

    wait_for(done, timeout, f"{name} to be archived")


@contextmanager
def tmpfs(size: str) -> Iterator[Path]:
    """A tiny tmpfs (we are root) owned by postgres: a filesystem that can really fill up."""
    mnt = Path(tempfile.mkdtemp(prefix="lwtest-tmpfs-"))
    uid, gid = pg_ids()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700,uid={uid},gid={gid}",
                    "lwtest", str(mnt)], check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)
        with suppress(OSError):
            mnt.rmdir()


def pgbench(c: PgCluster, *args: str) -> subprocess.Popen:
    return subprocess.Popen([str(PG_BIN / "pgbench"), *args], env=c.env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
