"""A real PostgreSQL 15 cluster on loopback archiving through postgres/bin/archive-wal."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from tests.support.pg import (
    PG_BIN,
    SEGMENT,
    archive_settings,
    archiver_stats,
    decompressed,
    gz_files,
    make_archive_dir,
    pg_ids,
    pgbench,
    ready_files,
    switch_wal,
    tmpfs,
    verify_archive,
    wait_archived,
)
from tests.support.wait import wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def arch():
    d = make_archive_dir()
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_switch_wal_archives_a_clean_16mb_segment(make_pg_cluster, arch):
    c = make_pg_cluster(**archive_settings(arch)).start()
    c.psql("CREATE TABLE t AS SELECT g FROM generate_series(1, 1000) g")
    name = switch_wal(c)
    wait_archived(c, name)
    target = arch / f"{name}.gz"
    assert target.is_file()
    for f in gz_files(arch):
        assert subprocess.run(["gzip", "-t", str(f)]).returncode == 0, f
    assert len(decompressed(target)) == SEGMENT
    assert archiver_stats(c)["failed_count"] == "0"
    assert verify_archive(arch).returncode == 0


def test_archive_timeout_archives_an_idle_but_written_segment(make_pg_cluster, arch):
    c = make_pg_cluster(**archive_settings(arch, archive_timeout="1")).start()
    current = c.psql("SELECT pg_walfile_name(pg_current_wal_lsn())")
    c.psql("CREATE TABLE idle_write(x int); INSERT INTO idle_write VALUES (1)")
    # The checkpointer computed its first sleep (checkpoint_timeout) while startup was still in
    # progress; a reload only wakes it up so the test need not wait 5 minutes. No WAL switch here:
    # only archive_timeout can close this partly written segment.
    c.psql("SELECT pg_reload_conf()")
    target = arch / f"{current}.gz"
    wait_for(target.exists, 30, "archive_timeout to archive the partially written segment")
    assert len(decompressed(target)) == SEGMENT
    stats = archiver_stats(c)
    assert stats["last_archived_wal"] >= current and stats["failed_count"] == "0"


@pytest.mark.parametrize("fault", ["unwritable", "full"])
def test_failed_archiving_keeps_segment_and_catches_up(make_pg_cluster, fault, tmp_path):
    with tmpfs("64m") as mnt:
        arch = mnt / "archive"
        arch.mkdir(mode=0o700)
        os.chown(arch, *pg_ids())
        c = make_pg_cluster(**archive_settings(arch)).start()
        c.psql("CREATE TABLE t AS SELECT g FROM generate_series(1, 10000) g")
        wait_for(lambda: not ready_files(c), 30, "startup segments to be archived")
        filler = mnt / "filler"
        if fault == "unwritable":
            arch.chmod(0o500)
        else:
            subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=1M", "count=64"],
                           capture_output=True, check=False)  # fills the filesystem: ENOSPC
        name = switch_wal(c)
        wait_for(lambda: int(archiver_stats(c)["failed_count"]) > 0, 30, "a failed archive attempt")
        stats = archiver_stats(c)
        assert stats["last_failed_wal"] == name
        assert f"{name}.ready" in ready_files(c), "PostgreSQL must keep retrying the segment"
        assert (c.datadir / "pg_wal" / name).is_file(), "segment must stay in pg_wal"
        assert not (arch / f"{name}.gz").exists()
        assert not [p for p in arch.iterdir() if p.name.startswith(".")], "temp file left in archive"
        # fix the fault: the archiver catches up by itself
        if fault == "unwritable":
            arch.chmod(0o700)
        else:
            filler.unlink()
        wait_archived(c, name)
        assert not ready_files(c)
        assert len(decompressed(arch / f"{name}.gz")) == SEGMENT
        r = verify_archive(arch)
        assert r.returncode == 0, r.stderr
        c.destroy()


def _postmaster_children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(x) for x in out.split()]


def test_kill9_during_write_burst_leaves_no_gap(make_pg_cluster, arch):
    c = make_pg_cluster(**archive_settings(arch, max_wal_size="'256MB'")).start()
    load = pgbench(c, "-i", "-s", "8", "-q")  # ~100 MB of WAL
    wait_for(lambda: len(gz_files(arch)) >= 3 or load.poll() is not None, 60, "archiving under load")
    assert load.poll() is None, "load finished before the crash; nothing was tested"
    postmaster = int((c.datadir / "postmaster.pid").read_text().split()[0])
    children = _postmaster_children(postmaster)
    os.kill(postmaster, signal.SIGKILL)
    load.wait(timeout=60)
    # backends and the archiver notice the postmaster's death and exit
    wait_for(lambda: not any(Path(f"/proc/{p}").exists() for p in children), 60, "orphaned backends to exit")
    archived_before_restart = {p.name for p in gz_files(arch)}
    c.start()
    c.psql("CREATE TABLE after_crash AS SELECT 1 AS x")
    name = switch_wal(c)
    wait_archived(c, name, timeout=60)
    wait_for(lambda: not ready_files(c), 60, "no segment waiting to be archived")
    assert archived_before_restart <= {p.name for p in gz_files(arch)}
    assert archiver_stats(c)["failed_count"] == "0"
    r = verify_archive(arch)
    assert r.returncode == 0, r.stderr
    assert "archive OK" in r.stderr
    assert not [p for p in arch.iterdir() if p.name.startswith(".")]


def test_verifier_reports_gap_and_corruption(make_pg_cluster, arch):
    c = make_pg_cluster(**archive_settings(arch)).start()
    names = []
    for _ in range(3):
        c.psql("CREATE TABLE IF NOT EXISTS t(x int); INSERT INTO t VALUES (1)")
        names.append(switch_wal(c))
    wait_archived(c, names[-1])
    assert verify_archive(arch).returncode == 0
    middle = arch / f"{names[1]}.gz"
    saved = middle.read_bytes()
    middle.unlink()
    r = verify_archive(arch)
    assert r.returncode == 1 and f"gap: {names[1]}.gz is missing" in r.stderr
    middle.write_bytes(saved[: len(saved) // 2])
    r = verify_archive(arch)
    assert r.returncode == 1 and "does not decompress" in r.stderr
    middle.write_bytes(saved)
    assert verify_archive(arch).returncode == 0


def test_pg_bin_has_the_tools(make_pg_cluster):
    for tool in ("pg_basebackup", "pg_verifybackup", "pgbench"):
        assert (PG_BIN / tool).is_file()
