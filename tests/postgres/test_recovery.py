"""Point-in-time recovery drill with the image's own tooling, the way an operator runs it:
`backup` and `restore` as one-shot containers next to the server (like `docker compose run`)."""

from __future__ import annotations

import pytest

from tests.support.containers import exec_sh, pg_ready, psql, wait_exited
from tests.support.wait import wait_for

pytestmark = pytest.mark.docker


def server_now(c) -> str:
    return psql(c, "SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00'")


def wait_clock_past(c, instant: str) -> None:
    """Poll until the server's clock is strictly past ``instant`` (commit times must differ)."""
    wait_for(lambda: psql(c, f"SELECT now() > '{instant}'::timestamptz + interval '10 ms'") == "t",
             10, "the server clock to move past the noted time", interval=0.02)


def switch_and_wait(c) -> str:
    name = psql(c, "SELECT pg_walfile_name(pg_switch_wal())")
    wait_for(lambda: exec_sh(c, ["test", "-f", f"/wal_archive/{name}.gz"])[0] == 0, 60, f"{name}.gz")
    return name


def tags(c) -> list[str]:
    return psql(c, "SELECT string_agg(tag, ',' ORDER BY tag) FROM drill", db="loomworks").split(",")


def stop(c) -> None:
    c.stop(timeout=30)
    assert wait_exited(c) == 0


def test_pitr_drill_end_to_end(postgres):
    net = postgres.network()
    vols = postgres.volume_set()
    server = postgres.run(vols, network=net, aliases=["postgres"])
    pg_ready(server)
    psql(server, "CREATE TABLE drill(tag text PRIMARY KEY)", db="loomworks")

    # base backup from a one-shot container over the network, as `docker compose run --rm postgres backup`
    rc, out = postgres.one_shot({"backups": vols["backups"]}, ["backup"], network=net)
    assert rc == 0, out
    assert "backup complete and verified" in out
    before_backup_end = psql(server, "SELECT (now() - interval '1 hour')::text")

    psql(server, "INSERT INTO drill VALUES ('A')", db="loomworks")
    noted = server_now(server)
    wait_clock_past(server, noted)
    psql(server, "INSERT INTO drill VALUES ('B')", db="loomworks")
    switch_and_wait(server)

    rc, out = postgres.one_shot(vols, ["verify-archive"])
    assert rc == 0, out
    assert "archive OK" in out and "from base backup" in out
    stop(server)
    archive_only = {"arch": vols["arch"], "backups": vols["backups"]}

    # restore to the end of the archive: A and B
    latest = {**archive_only, "data": postgres.volume("data-latest")}
    rc, out = postgres.one_shot(latest, ["restore", "--latest"])
    assert rc == 0, out
    assert "restore complete" in out
    s2 = postgres.run(latest)
    pg_ready(s2)
    assert tags(s2) == ["A", "B"]
    assert psql(s2, "SELECT pg_is_in_recovery()") == "f"
    stop(s2)

    # restore to the noted time: A present, B absent
    pitr = {**archive_only, "data": postgres.volume("data-pitr")}
    rc, out = postgres.one_shot(pitr, ["restore", "--target-time", noted])
    assert rc == 0, out
    s3 = postgres.run(pitr)
    pg_ready(s3)
    assert tags(s3) == ["A"]
    # the restored cluster archives its new timeline; the archive stays consistent
    psql(s3, "INSERT INTO drill VALUES ('C')", db="loomworks")
    switch_and_wait(s3)
    assert int(psql(s3, "SELECT timeline_id FROM pg_control_checkpoint()")) >= 2
    rc, out = postgres.one_shot(vols, ["verify-archive"])
    assert rc == 0, out
    stop(s3)

    # refusals with one clear line, nothing changed
    rc, out = postgres.one_shot(pitr, ["restore", "--latest"])
    assert rc == 1 and "is not empty" in out
    bad = {**archive_only, "data": postgres.volume("data-bad")}
    rc, out = postgres.one_shot(bad, ["restore", "--target-time", before_backup_end])
    assert rc == 1, out
    assert "is before the end of base backup" in out
    rc, out = postgres.one_shot(bad, ["restore", "--target-time", "2999-01-01 00:00:00+00"])
    assert rc == 1, out
    assert "beyond the end of the archive" in out
    assert "emptied again" in out
    rc, out = postgres.one_shot(bad, ["bash", "-c", "ls -A \"$PGDATA\" | wc -l"])
    assert (rc, out.strip()) == (0, "0")
    rc, out = postgres.one_shot(bad, ["restore", "--target-time", "not a time"])
    assert rc == 1 and "cannot parse" in out


def test_backup_fails_cleanly_without_server(postgres):
    net = postgres.network()
    vols = postgres.volume_set()
    rc, out = postgres.one_shot({"backups": vols["backups"]}, ["backup"], network=net,
                             env={"BACKUP_HOST": "nowhere"})
    assert rc == 1
    assert "no PostgreSQL server answers at nowhere:5432" in out
    rc, out = postgres.one_shot({"backups": vols["backups"]}, ["bash", "-c", "ls -A /backups | wc -l"])
    assert out.strip() == "0", "a failed backup must leave nothing behind"


def test_restore_without_backup_says_so(postgres):
    vols = postgres.volume_set()
    rc, out = postgres.one_shot(vols, ["restore", "--latest"])
    assert rc == 1
    assert "no base backup in /backups" in out


def test_backup_inside_running_container_uses_the_socket(postgres):
    """`docker compose exec -u postgres postgres pg-backup`: no password needed on the socket."""
    c = postgres.run(postgres.volume_set())
    pg_ready(c)
    r = c.exec_run(["pg-backup"], user="postgres", demux=True)
    stdout, stderr = (part.decode() if part else "" for part in r.output)
    assert r.exit_code == 0, stdout + stderr
    # stdout carries the path alone (stderr the log line, in no fixed order with it)
    path = stdout.strip()
    assert path.startswith("/backups/2"), stdout
    rc, out = exec_sh(c, ["pg_verifybackup", "-q", "-i", "loomworks-backup.info", path], "postgres")
    assert rc == 0, out
    rc, out = exec_sh(c, ["stat", "-c", "%a %U", "/backups", path])
    assert out.split() == ["700", "postgres", "700", "postgres"]
