"""Drill: the whole ERP state comes back. On the stack (its backup and filestore services),
attachments are created before a noted time T, created after it, and deleted (and collected
by Odoo's filestore GC) after it; then both the database and the filestore volumes are lost,
the database is restored to T and the filestore from its archive: every file the restored
database references is present, and Odoo serves the attachments of T byte for byte."""

from __future__ import annotations

import base64
import hashlib
import time

import pytest

from tests.support.compose import Stack, docker
from tests.support.rpc import call_kw
from tests.support.wait import wait_for

pytestmark = [pytest.mark.docker, pytest.mark.odoo]

NOW = "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00'"
GC = "env['ir.attachment']._gc_file_store(); env.cr.commit()"


def sha(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()  # noqa: S324 (Odoo's filestore names)


def archived(st: Stack, path: str) -> bool:
    return st.exec("filestore", "test", "-f", f"/filestore_archive/{path}", check=False).returncode == 0


def attach(st: Stack, http, name: str, data: bytes) -> int:
    return call_kw(http, st.url(), "ir.attachment", "create",
                   {"name": name, "datas": base64.b64encode(data).decode(), "mimetype": "text/plain"})


def missing_files(st: Stack) -> list[str]:
    """store_fname of every attachment of the database without its file in the filestore."""
    names = st.psql("SELECT string_agg(DISTINCT store_fname, ' ') FROM ir_attachment "
                    "WHERE store_fname IS NOT NULL", db="loomworks").split()
    assert names, "the database references no file"
    script = "cd /var/lib/odoo/filestore/loomworks && for f; do [ -f \"$f\" ] || echo \"$f\"; done"
    return st.exec("filestore", "sh", "-c", script, "sh", *names).stdout.split()


def test_restore_to_t_brings_back_every_referenced_file(stacks, drill):
    st = stacks(env={"FILESTORE_SYNC_INTERVAL": "2s"})
    wait_for(lambda: "cycle complete" in st.logs("backup", tail=200), 300, "the first scheduled base backup")
    http = st.login()
    before, doomed = b"created before T\n", b"created before T, deleted after T\n"
    after = b"created after T\n"
    keep_id = attach(st, http, "before.txt", before)
    doomed_id = attach(st, http, "deleted.txt", doomed)
    for data in (before, doomed):
        path = f"loomworks/{sha(data)[:2]}/{sha(data)}"
        wait_for(lambda p=path: archived(st, p), 60, f"{path} in the filestore archive")
    target = st.psql(NOW)
    wait_for(lambda: st.psql(f"SELECT clock_timestamp() > '{target}'::timestamptz + interval '10 ms'") == "t",
             10, "the clock past T", interval=0.05)

    attach(st, http, "after.txt", after)
    call_kw(http, st.url(), "ir.attachment", "unlink", [doomed_id])
    r = st.run("exec", "-T", "odoo", "sh", "-c", f"echo \"{GC}\" | odoo shell -d loomworks --no-http",
               timeout=300)
    assert "filestore gc" in r.stdout + r.stderr, r.stderr[-3000:]
    doomed_path = f"loomworks/{sha(doomed)[:2]}/{sha(doomed)}"
    gone = st.exec("filestore", "test", "-e", f"/var/lib/odoo/filestore/{doomed_path}", check=False)
    assert gone.returncode == 1, "Odoo's GC left the deleted attachment's file"
    wait_for(lambda: archived(st, f".gone/{doomed_path}"), 60, "the archive to note the deleted file")
    st.archive_wal()

    # disaster: the database's and the filestore's volumes are lost
    st.run("rm", "--stop", "--force", "nginx", "odoo", "filestore", "backup", "postgres", timeout=300)
    docker("volume", "rm", f"{st.project}_postgres_data", f"{st.project}_odoo_data")
    started = time.monotonic()
    r = st.run("run", "--rm", "postgres", "restore", "--target-time", target, timeout=900)
    assert "restore complete" in r.stderr + r.stdout
    r = st.run("run", "--rm", "--no-deps", "filestore", "restore-filestore", "--target-time", target,
               timeout=600)
    assert "filestore restored for" in r.stderr + r.stdout
    st.up()
    st.wait_healthy(600)
    recover_s = time.monotonic() - started

    names = st.psql("SELECT string_agg(name, ',' ORDER BY name) FROM ir_attachment WHERE name LIKE '%.txt'",
                    db="loomworks")
    assert names == "before.txt,deleted.txt", names
    assert missing_files(st) == []
    http = st.login()
    for att_id, data in ((keep_id, before), (doomed_id, doomed)):
        r = http.get(st.url(f"/web/content/{att_id}?download=true"), timeout=30)
        assert r.status_code == 200 and r.content == data, (att_id, r.status_code, r.content[:200])
    drill("restore to T (database + filestore): attachments created before T, after T, and deleted after T; "
          "every file the restored database references present, Odoo serves them", "0 missing", recover_s)
