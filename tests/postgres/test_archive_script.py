"""archive-wal's contract (PostgreSQL's archive_command rules) on real files, run as the postgres
user like the archiver runs it."""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.pg import (
    ARCHIVE_WAL,
    LIB_ENV,
    SEGMENT,
    archive,
    decompressed,
    gz_files,
    make_archive_dir,
    pg_ids,
    tmpfs,
)
from tests.support.wait import wait_for

pytestmark = pytest.mark.integration

NAME = "000000010000000A000000FE"


@pytest.fixture
def work():
    """(archive dir, source dir), both owned by postgres."""
    arch = make_archive_dir()
    src = make_archive_dir()
    yield arch, src
    shutil.rmtree(arch, ignore_errors=True)
    shutil.rmtree(src, ignore_errors=True)


def segment(src_dir: Path, name: str = NAME, seed: bytes = b"a", size: int = SEGMENT,
            data: bytes = b"") -> Path:
    """A WAL-sized file: compressible structure plus some entropy, like real WAL (or ``data``)."""
    block = hashlib.sha256(seed).digest() * 8 + bytes(7936)
    data = data or (block * (size // len(block) + 1))[:size]
    p = src_dir / name
    p.write_bytes(data)
    os.chown(p, *pg_ids())
    return p


def sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def test_archives_segment_compressed_private_and_verified(work):
    arch, src = work
    seg = segment(src)
    assert (r := archive(seg, NAME, arch)).returncode == 0, r.stderr
    target = arch / f"{NAME}.gz"
    assert [p.name for p in arch.iterdir()] == [target.name], "temp file left behind"
    assert decompressed(target) == seg.read_bytes() and target.stat().st_size < SEGMENT // 4
    assert target.stat().st_mode & 0o077 == 0, "archive file readable by group/others"
    assert subprocess.run(["gzip", "-t", str(target)]).returncode == 0


@pytest.mark.parametrize("name", ["00000002.history", f"{NAME}.partial", f"{NAME}.00000028.backup"])
def test_archives_history_partial_and_backup_files(work, name):
    arch, src = work
    f = segment(src, name=name, size=300)
    assert archive(f, name, arch).returncode == 0 and decompressed(arch / f"{name}.gz") == f.read_bytes()


def test_identical_rearchive_returns_0(work):
    arch, src = work
    seg = segment(src)
    assert archive(seg, NAME, arch).returncode == 0
    before = (sha(arch / f"{NAME}.gz"), (arch / f"{NAME}.gz").stat().st_ino)
    r = archive(seg, NAME, arch)
    assert r.returncode == 0 and "identical" in r.stderr, r.stderr
    assert (sha(arch / f"{NAME}.gz"), (arch / f"{NAME}.gz").stat().st_ino) == before


def test_identical_content_at_another_level_is_still_identical(work):
    arch, src = work
    seg = segment(src)
    assert archive(seg, NAME, arch, WAL_GZIP_LEVEL="9").returncode == 0
    assert archive(seg, NAME, arch, WAL_GZIP_LEVEL="1").returncode == 0


@pytest.mark.parametrize("existing", ["different", "corrupt"])
def test_different_or_corrupt_existing_file_returns_1_and_is_untouched(work, existing):
    arch, src = work
    target = arch / f"{NAME}.gz"
    if existing == "different":
        assert archive(segment(src, seed=b"first"), NAME, arch).returncode == 0
    else:
        target.write_bytes(b"\x1f\x8b garbage")
    before = (sha(target), target.stat().st_mtime_ns, target.stat().st_ino)
    r = archive(segment(src, seed=b"second"), NAME, arch)
    assert r.returncode == 1 and (existing == "corrupt" or "DIFFERENT content" in r.stderr), r.stderr
    assert target.name in r.stderr and [p.name for p in arch.iterdir()] == [target.name], r.stderr
    assert (sha(target), target.stat().st_mtime_ns, target.stat().st_ino) == before


def test_unwritable_archive_dir_returns_1(work):
    arch, src = work
    arch.chmod(0o500)
    r = archive(segment(src), NAME, arch)
    assert r.returncode == 1 and "not writable" in r.stderr, r.stderr
    assert list(arch.iterdir()) == []


def test_full_archive_filesystem_returns_1_and_leaves_no_temp(work):
    seg = segment(work[1], data=os.urandom(SEGMENT))  # incompressible: cannot fit in 1 MiB
    with tmpfs("1m") as arch:
        r = archive(seg, NAME, arch)
        assert r.returncode == 1 and "NOT archived" in r.stderr, r.stderr
        assert list(arch.iterdir()) == [], "partial or temp file left on the full filesystem"


@pytest.mark.parametrize(("args", "message"), [
    (["{src}", "not-a-wal-name", "{arch}"], "not a WAL file name"),
    (["{src}/missing", NAME, "{arch}"], "missing or unreadable"),
    (["{src}/" + NAME, NAME, "{arch}/nonexistent"], "does not exist"),
    (["only-one-arg"], "usage"),
])
def test_bad_invocation_returns_1_with_clear_message(work, args, message):
    arch, src = work
    segment(src)
    argv = [a.format(src=src, arch=arch) for a in args]
    r = subprocess.run(["runuser", "-u", "postgres", "--", str(ARCHIVE_WAL), *argv],
                       env={**os.environ, **LIB_ENV}, capture_output=True, text=True)
    assert r.returncode == 1 and message in r.stderr, r.stderr


def test_bad_level_returns_1(work):
    arch, src = work
    r = archive(segment(src), NAME, arch, WAL_GZIP_LEVEL="fast")
    assert r.returncode == 1 and "WAL_GZIP_LEVEL" in r.stderr


def test_missing_compressor_exits_1_not_127(work):
    """`command not found` (127) would make PostgreSQL restart the archiver; we must say 1."""
    arch, src = work
    only_bash = make_archive_dir()
    (only_bash / "bash").symlink_to(shutil.which("bash"))
    try:
        r = archive(segment(src), NAME, arch, ENV_PATH=str(only_bash))
    finally:
        shutil.rmtree(only_bash, ignore_errors=True)
    assert r.returncode == 1 and "NOT archived" in r.stderr, r.stderr
    assert list(arch.iterdir()) == []


def test_sigterm_during_archiving_exits_1_and_cleans_up(work):
    arch, src = work
    seg = segment(src, data=os.urandom(4 * SEGMENT))  # slow enough to interrupt
    p = subprocess.Popen(["runuser", "-u", "postgres", "--", str(ARCHIVE_WAL), str(seg), NAME, str(arch)],
                         env={**os.environ, **LIB_ENV}, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: any(arch.iterdir()) or p.poll() is not None, 10, "a temp file in the archive")
    if p.poll() is not None:
        pytest.fail(f"archive-wal finished before it could be interrupted: {p.stderr.read()}")
    # signal the script itself (runuser's child), as a shutdown of the archiver would
    child = subprocess.run(["pgrep", "-P", str(p.pid)], capture_output=True, text=True).stdout.split()
    for pid in child or [str(p.pid)]:
        os.kill(int(pid), signal.SIGTERM)
    err = p.communicate(timeout=20)[1]
    assert p.returncode == 1 and "interrupted by SIGTERM" in err, err
    assert list(arch.iterdir()) == [], "temp file left after SIGTERM"


def test_stale_temp_files_are_removed(work):
    arch, src = work
    stale = arch / f".{NAME}.gz.tmp.AbC123"
    fresh = arch / ".000000010000000000000001.gz.tmp.XyZ789"
    for p in (stale, fresh):
        p.write_bytes(b"partial")
        os.chown(p, *pg_ids())
    old = time.time() - 3600
    os.utime(stale, (old, old))
    assert archive(segment(src), NAME, arch).returncode == 0
    assert not stale.exists(), "stale temp file from a crashed run not cleaned up"
    assert fresh.exists(), "a recent temp file (maybe in use) was removed"
    assert [p.name for p in gz_files(arch)] == [f"{NAME}.gz"]


def test_gzip_format_is_plain_gzip(work):
    """Anyone can restore with stock tools: `gzip -dc`, Python's gzip."""
    arch, src = work
    seg = segment(src)
    assert archive(seg, NAME, arch).returncode == 0
    out = subprocess.run(["gzip", "-dc", str(arch / f"{NAME}.gz")], capture_output=True, check=True).stdout
    assert out == seg.read_bytes()
    with gzip.open(arch / f"{NAME}.gz") as f:
        assert len(f.read()) == SEGMENT


def test_restore_wal_round_trip_missing_and_corrupt(work):
    """restore_command: 0 restores, 1 = not in archive (end of WAL), 126 = corrupt (abort recovery)."""
    arch, src = work
    seg = segment(src)
    assert archive(seg, NAME, arch).returncode == 0
    restore_wal = ARCHIVE_WAL.with_name("restore-wal")
    dest = src / "RECOVERYXLOG"

    def restore(name: str) -> subprocess.CompletedProcess:
        cmd = ["runuser", "-u", "postgres", "--", str(restore_wal), name, str(dest), str(arch)]
        return subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **LIB_ENV})

    assert restore(NAME).returncode == 0 and dest.read_bytes() == seg.read_bytes()
    assert restore("00000002.history").returncode == 1
    (arch / f"{NAME}.gz").write_bytes(gzip.compress(seg.read_bytes())[:5000])
    r = restore(NAME)
    assert r.returncode == 126 and "corrupt" in r.stderr, r.stderr
    assert not list(src.glob("*.tmp")), "partial restore file left behind"
