"""Shared helpers for the PostgreSQL tests: the repo's scripts on the host, and containers."""

from __future__ import annotations

import gzip
import os
import pwd
import re
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from tests.support.pg import PG_BIN, PgCluster
from tests.support.wait import wait_for

REPO = Path(__file__).resolve().parents[2]
BIN = REPO / "postgres" / "bin"
ARCHIVE_WAL = BIN / "archive-wal"
VERIFY = BIN / "pg-verify-archive"
SEGMENT = 16 * 1024 * 1024
LIB_ENV = {"LOOMWORKS_LIB": str(REPO / "docker" / "lib")}


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
    return subprocess.run(["runuser", "-u", "postgres", "--", *map(str, cmd)], env=full_env,
                          capture_output=True, text=True, check=check)


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


def unique(prefix: str) -> str:
    return f"lwtest-{prefix}-{uuid.uuid4().hex[:8]}"


def rmtree(p: Path) -> None:
    shutil.rmtree(p, ignore_errors=True)
