"""Point-in-time recovery drill with the image's own tooling, the way an operator runs it:
`backup` and `restore` as one-shot containers next to the server (like `docker compose run`)."""

from __future__ import annotations

import pytest

from tests.support.containers import (
    drill_tags,
    exec_sh,
    pg_ready,
    psql,
    runbook_command,
    server_now,
    switch_and_wait,
    wait_clock_past,
    wait_exited,
)

pytestmark = pytest.mark.docker


def stop(c) -> None:
    c.stop(timeout=30)
    assert wait_exited(c) == 0


def restore(postgres, vols, *args: str, net: str | None = None) -> tuple[int, str]:
    """`docker compose run --rm postgres restore ...` on the service's own volumes."""
    return postgres.one_shot(vols, ["restore", *args], network=net)


def restore_fails_after(postgres, vols, damage: str, *phrases: str) -> None:
    """The shell command ``damage`` on the volumes, then `restore --latest`: exit 1 with one
    error line that says each of ``phrases``."""
    rc, out = postgres.one_shot(vols, ["bash", "-c", damage])
    assert rc == 0, out
    rc, out = restore(postgres, vols, "--latest")
    assert rc == 1 and len(errors(out)) == 1, out
    assert all(p in errors(out)[0] for p in phrases), out


def errors(out: str) -> list[str]:
    return [line for line in out.splitlines() if "error:" in line]


def test_pitr_drill_in_place_loses_nothing(postgres):
    """The runbook on the service's own volumes: backups, rows A, time, a second backup, rows B,
    C committed after the last archived segment, clean stop; `restore --latest` in place brings
    back A, B and C (C only lived in the old pg_wal); `--target-time` picks the older backup by
    itself; the old clusters are kept beside the restored one."""
    net = postgres.network()
    vols = postgres.volume_set()
    server = postgres.drill_server(vols, net)
    first = postgres.take_backup(vols, net)
    before_backup_end = psql(server, "SELECT (now() - interval '1 hour')::text")

    psql(server, "INSERT INTO drill VALUES ('A')", db="loomworks")
    # backup ends are stored to the second: the noted time lies a full second after the first
    wait_clock_past(server, psql(server, "SELECT (now() + interval '1.1 s')::text"))
    noted = server_now(server)
    wait_clock_past(server, noted)
    second = postgres.take_backup(vols, net)
    psql(server, "INSERT INTO drill VALUES ('B')", db="loomworks")
    switch_and_wait(server)
    psql(server, "INSERT INTO drill VALUES ('C')", db="loomworks")  # in the current, unarchived segment

    # refused while the server runs, nothing touched
    rc, out = restore(postgres, vols, "--latest", net=net)
    assert rc == 1, out
    assert len(errors(out)) == 1 and "a PostgreSQL server is running" in errors(out)[0], out
    stop(server)

    # --latest in place: A, B and C
    rc, out = restore(postgres, vols, "--latest")
    assert rc == 0, out
    assert "restore complete" in out
    assert "moved the old cluster aside to /var/lib/postgresql/data/pgdata.before-restore-" in out
    assert "saved " in out and "the partial current segment included" in out, out
    s2 = postgres.run(vols)
    pg_ready(s2)
    assert drill_tags(s2) == ["A", "B", "C"]
    assert psql(s2, "SELECT pg_is_in_recovery()") == "f"
    stop(s2)
    kept = [n for n in postgres.ls(vols) if n.startswith("pgdata.before-restore-")]
    assert len(kept) == 1, kept

    # --target-time: the newest backup that ends before it is chosen by itself (the first)
    rc, out = restore(postgres, vols, "--target-time", noted)
    assert rc == 0, out
    assert f"chose base backup {first}" in out and second != first
    s3 = postgres.run(vols, network=net, aliases=["postgres"])
    pg_ready(s3)
    assert drill_tags(s3) == ["A"]
    # the restored cluster archives its new timeline; the archive stays consistent
    psql(s3, "INSERT INTO drill VALUES ('D')", db="loomworks")
    switch_and_wait(s3)
    assert int(psql(s3, "SELECT timeline_id FROM pg_control_checkpoint()")) >= 2
    rc, out = postgres.one_shot(vols, ["verify-archive"])
    assert rc == 0, out
    stop(s3)
    assert len([n for n in postgres.ls(vols) if n.startswith("pgdata.before-restore-")]) == 2

    # refusals with one clear line; the data stays as it was
    rc, out = restore(postgres, vols, "--target-time", before_backup_end)
    assert rc == 1, out
    assert len(errors(out)) == 1 and "before the end of every base backup" in errors(out)[0], out
    rc, out = restore(postgres, vols, "--backup", second, "--target-time", noted)
    assert rc == 1 and "is before the end of base backup" in out, out
    rc, out = restore(postgres, vols, "--target-time", "2999-01-01 00:00:00+00")
    assert rc == 1, out
    assert len(errors(out)) == 1, out
    assert "beyond the end of the WAL" in errors(out)[0]
    assert "the old cluster is back in /var/lib/postgresql/data/pgdata, unchanged" in errors(out)[0]
    rc, out = restore(postgres, vols, "--target-time", "not a time")
    assert rc == 1 and "cannot parse" in out
    s4 = postgres.run(vols)
    pg_ready(s4)
    assert drill_tags(s4) == ["A", "D"]
    stop(s4)

    # the runbook's "undo the last restore", as written: the cluster before it (A, B, C) is back
    rc, out = postgres.one_shot(vols, runbook_command("Undo the last restore"))
    assert rc == 0, out
    s5 = postgres.run(vols)
    pg_ready(s5)
    assert drill_tags(s5) == ["A", "B", "C"]
    stop(s5)


def test_corrupt_archive_file_and_unreadable_backup_keep_the_old_data(postgres):
    net = postgres.network()
    vols = postgres.volume_set()
    server = postgres.drill_server(vols, net)
    name = postgres.take_backup(vols, net)
    psql(server, "INSERT INTO drill VALUES ('A')", db="loomworks")
    segment = switch_and_wait(server)
    psql(server, "INSERT INTO drill VALUES ('B')", db="loomworks")
    stop(server)

    # a backup file the restore cannot read: refused before anything moves
    hidden = f"/backups/{name}/PG_VERSION"
    restore_fails_after(postgres, vols, f"chmod 000 {hidden}",
                        f"base backup {name} is unreadable or damaged", "nothing changed")
    assert not [n for n in postgres.ls(vols) if n.startswith("pgdata.")]
    rc, out = postgres.one_shot(vols, ["bash", "-c", f"chmod 600 {hidden}"])
    assert rc == 0, out

    # a corrupt archive file: recovery stops, the old cluster goes back in place
    restore_fails_after(postgres, vols, f"echo garbage > /wal_archive/{segment}.gz",
                        f"archive file /wal_archive/{segment}.gz is corrupt or unreadable",
                        "the old cluster is back in /var/lib/postgresql/data/pgdata, unchanged")
    s2 = postgres.run(vols)
    pg_ready(s2)
    assert drill_tags(s2) == ["A", "B"]


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


def test_restore_after_a_crash_replays_the_crashed_clusters_wal(postgres):
    """kill -9 (the container's init: every process dies, postmaster.pid stays), volume intact:
    `restore --latest` in place keeps the crashed cluster and replays its unarchived WAL."""
    net = postgres.network()
    vols = postgres.volume_set()
    server = postgres.drill_server(vols, net)
    postgres.take_backup(vols, net)
    psql(server, "INSERT INTO drill VALUES ('A')", db="loomworks")
    server.kill()
    wait_exited(server)
    rc, out = restore(postgres, vols, "--latest")
    assert rc == 0, out
    assert "not shut down cleanly" in out
    assert "the partial current segment included" in out
    s2 = postgres.run(vols)
    pg_ready(s2)
    assert drill_tags(s2) == ["A"]
