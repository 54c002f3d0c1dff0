"""The filestore archive (filestore-archive, the stack's `filestore` service) on volumes laid
out like Odoo's (filestore/<db>/<xx>/<sha1>, owned by uid 1000): sync copies new files and
verifies them, marks what left the filestore, prune removes only what left before the
retention line, restore copies back what the filestore lacks; bad archives fail in one line.
The whole drill with a real Odoo is tests/drills/test_filestore_restore.py."""

from __future__ import annotations

import hashlib

import pytest

from tests.support.containers import exec_sh, wait_health, wait_log
from tests.support.wait import wait_for

pytestmark = pytest.mark.docker

ODOO = "1000:1000"
FS_HEALTH = {"test": ["CMD", "docker-healthcheck.sh", "filestore"], "interval": 1_000_000_000,
             "timeout": 5_000_000_000, "retries": 1, "start_period": 0}


def blob(text: str) -> tuple[str, bytes]:
    data = text.encode()
    sha = hashlib.sha1(data).hexdigest()  # noqa: S324 (Odoo's filestore names)
    return f"lwtest/{sha[:2]}/{sha}", data


class Volumes:
    """A data volume (/var/lib/odoo) and an archive volume (/filestore_archive)."""

    def __init__(self, postgres) -> None:
        self.pg = postgres
        self.data = postgres.volume("odoo-data")
        self.arch = postgres.volume("fs-arch")

    def mounts(self, data: str | None = None) -> dict:
        return {data or self.data: {"bind": "/var/lib/odoo", "mode": "rw"},
                self.arch: {"bind": "/filestore_archive", "mode": "rw"}}

    def sh(self, script: str, user: str = ODOO, data: str | None = None) -> tuple[int, str]:
        c = self.pg.run(command=["bash", "-c", script], volumes=self.mounts(data), publish=False, user=user)
        rc = c.wait(timeout=60)["StatusCode"]
        return rc, c.logs().decode()

    def cmd(self, *args: str, user: str = ODOO, data: str | None = None) -> tuple[int, str]:
        c = self.pg.run(command=list(args), volumes=self.mounts(data), publish=False, user=user)
        rc = c.wait(timeout=60)["StatusCode"]
        return rc, c.logs().decode()

    def write(self, name: str, data: bytes) -> None:
        rc, out = self.sh(f"umask 077; mkdir -p /var/lib/odoo/filestore/{name.rsplit('/', 1)[0]} && "
                          f"printf %s '{data.decode()}' > /var/lib/odoo/filestore/{name}")
        assert rc == 0, out

    def listing(self, root: str, data: str | None = None) -> set[str]:
        rc, out = self.sh(f"cd {root} && find . -type f -printf '%P\\n'", data=data)
        assert rc == 0, out
        return set(out.split())


def test_sync_mark_prune_restore(postgres):
    v = Volumes(postgres)
    kept, kept_data = blob("kept attachment")
    gone, gone_data = blob("deleted attachment")
    v.write(kept, kept_data)
    v.write(gone, gone_data)
    # Odoo's own non-filestore files are never archived
    rc, out = v.sh("mkdir -p /var/lib/odoo/filestore/lwtest/checklist/ab /var/lib/odoo/sessions && "
                   "touch /var/lib/odoo/filestore/lwtest/checklist/ab/x /var/lib/odoo/sessions/s")
    assert rc == 0, out

    # started as root (docker compose run): it continues as the filestore's owner
    rc, out = v.cmd("sync-filestore", user="0")
    assert rc == 0, out
    assert "filestore synced: 2 new file(s) archived, 0 left for the next run, 0 newly gone" in out
    assert v.listing("/filestore_archive") == {kept, gone}
    rc, out = v.sh("stat -c '%u %g %a' /filestore_archive; stat -c '%u %a' /filestore_archive/" + kept)
    assert out.split() == ["1000", "999", "2770", "1000", "600"], out

    # a file leaves the filestore: marked once, kept in the archive
    rc, out = v.sh(f"rm /var/lib/odoo/filestore/{gone}")
    rc, out = v.cmd("filestore-archive", "sync")
    assert rc == 0 and "0 new file(s) archived, 0 left for the next run, 1 newly gone" in out, out
    assert v.listing("/filestore_archive") == {kept, gone, f".gone/{gone}"}

    # prune up to a line before the marker removes nothing; past it, the gone file only
    rc, out = v.cmd("filestore-archive", "prune", "--before", "1000000000")
    assert rc == 0 and "0 file(s) gone from the filestore before 2001-09-09" in out, out
    rc, out = v.sh("date -d '+1 minute' +%s")
    rc, out = v.cmd("filestore-archive", "prune", "--before", out.strip())
    assert rc == 0 and "filestore archive pruned: 1 file(s)" in out, out
    assert v.listing("/filestore_archive") == {kept}

    # restore into an empty data volume: every archived file, byte for byte, owned by Odoo's user
    v.write(gone, gone_data)
    rc, out = v.cmd("filestore-archive", "sync")
    assert "1 new file(s) archived, 0 left for the next run, 0 newly gone from the filestore, 0 back" in out
    fresh = postgres.volume("odoo-fresh")
    rc, out = v.cmd("restore-filestore", "--target-time", "2026-01-01 00:00:00+00", user="0", data=fresh)
    assert rc == 0, out
    assert "filestore restored for 2026-01-01 00:00:00+00: 2 file(s) copied" in out
    assert v.listing("/var/lib/odoo/filestore", data=fresh) == {kept, gone}
    path = f"/var/lib/odoo/filestore/{kept}"
    rc, out = v.sh(f"sha1sum {path}; stat -c '%u' /var/lib/odoo {path}", data=fresh)
    assert out.split() == [kept.rsplit("/", 1)[1], path, "1000", "1000"], out
    # again: nothing to copy, nothing touched
    rc, out = v.cmd("restore-filestore", "--latest", data=fresh)
    assert rc == 0 and "0 file(s) copied" in out, out


def test_bad_input_and_a_corrupt_archive_file_fail_in_one_line(postgres):
    v = Volumes(postgres)
    name, data = blob("will be corrupted")
    v.write(name, data)
    rc, out = v.cmd("filestore-archive", "sync")
    assert rc == 0, out
    rc, out = v.sh(f"chmod 600 /filestore_archive/{name}; printf x >> /filestore_archive/{name}")
    assert rc == 0, out
    fresh = postgres.volume("odoo-fresh")
    rc, out = v.cmd("restore-filestore", "--latest", data=fresh)
    assert rc == 1
    assert out.strip().splitlines()[-1] == ("filestore-archive: error: 1 archived file(s) do not match their "
                                            "sha1 (corrupt archive); the filestore keeps every other file")
    rc, out = v.cmd("restore-filestore", "--target-time", "yesterday-ish")
    assert (rc, out.strip()) == (1, "filestore-archive: error: --target-time: cannot parse 'yesterday-ish' "
                                    "as a time")
    rc, out = v.cmd("filestore-archive", "prune", "--before", "soon")
    assert rc == 1 and "usage: filestore-archive" in out
    c = postgres.run(command=["filestore-archive", "run"], volumes=v.mounts(), publish=False, user=ODOO,
                     env={"FILESTORE_SYNC_INTERVAL": "0s"})
    assert c.wait(timeout=60)["StatusCode"] == 1
    assert c.logs().decode().strip() == ("filestore-archive: error: FILESTORE_SYNC_INTERVAL must be an "
                                         "interval N followed by s, m, h or d (e.g. 30s, 15m, 6h, 1d), or "
                                         "hourly, daily, weekly; got '0s'")
    c = postgres.run(command=["filestore-archive", "sync"], publish=False, user=ODOO)
    assert c.wait(timeout=60)["StatusCode"] == 1
    assert c.logs().decode().strip() == ("filestore-archive: error: /var/lib/odoo is not a mounted volume "
                                         "(mount the odoo_data volume there)")


def test_service_syncs_on_its_interval_and_after_each_backup(postgres):
    v = Volumes(postgres)
    svc = postgres.run(command=["filestore-archive", "run"], volumes=v.mounts(), publish=False, user=ODOO,
                       env={"FILESTORE_SYNC_INTERVAL": "1h"}, healthcheck=FS_HEALTH)
    wait_log(svc, "started: filestore sync every 1h", 30)
    wait_health(svc, "healthy", 30)
    name, data = blob("uploaded after the first sync")
    v.write(name, data)
    # the backup service writes its retention line: a sync (and prune) follows within seconds
    rc, out = exec_sh(svc, ["bash", "-c", "echo 1000000000 > /filestore_archive/.retain-since"])
    assert rc == 0, out
    wait_log(svc, "1 new file(s) archived", 30)
    assert name in v.listing("/filestore_archive")
    # a failing sync (a garbled retention line): one error line, unhealthy
    rc, out = exec_sh(svc, ["bash", "-c", "echo garbage > /filestore_archive/.retain-since"])
    assert rc == 0, out
    wait_log(svc, "filestore-archive: error: filestore sync failed", 30)
    assert ("/filestore_archive/.retain-since holds 'garbage', not seconds since the epoch"
            in svc.logs().decode())
    wait_health(svc, "unhealthy", 30)
    rc, out = exec_sh(svc, ["bash", "-c", f"rm /var/lib/odoo/filestore/{name} && "
                            "echo 1000000002 > /filestore_archive/.retain-since"])
    assert rc == 0, out
    wait_health(svc, "healthy", 30)
    wait_for(lambda: f".gone/{name}" in v.listing("/filestore_archive"), 30, "the gone marker")
