"""Scheduled base backups and retention with the image's own tooling: `prune` keeps the newest
BACKUP_RETENTION backups and the WAL they need (verify-archive passes, a point-in-time restore
to just after the oldest kept backup works), and the `backup-scheduler` service backs up on an
interval schedule and shows a failure in its log and its health check."""

from __future__ import annotations

import re

import pytest

from tests.support.containers import (
    drill_tags,
    exec_sh,
    pg_ready,
    psql,
    server_now,
    switch_and_wait,
    wait_clock_past,
    wait_exited,
    wait_health,
    wait_log,
)

pytestmark = pytest.mark.docker

SCHEDULER_HEALTH = {"test": ["CMD", "docker-healthcheck.sh", "backup"], "interval": 1_000_000_000,
                    "timeout": 5_000_000_000, "retries": 1, "start_period": 0}


def segno(name: str) -> int:
    return int(name[8:16], 16) * 0x100000000 + int(name[16:24], 16)


def test_prune_keeps_what_the_kept_backups_need_then_pitr_after_the_oldest(postgres):
    net = postgres.network()
    vols = postgres.volume_set()
    server = postgres.drill_server(vols, net)

    psql(server, "INSERT INTO drill VALUES ('a1')", db="loomworks")
    first = postgres.take_backup(vols, net)
    psql(server, "INSERT INTO drill VALUES ('a2')", db="loomworks")
    switch_and_wait(server)
    second = postgres.take_backup(vols, net)
    psql(server, "INSERT INTO drill VALUES ('k')", db="loomworks")   # just after the oldest kept backup
    noted = server_now(server)
    wait_clock_past(server, noted)
    psql(server, "INSERT INTO drill VALUES ('l')", db="loomworks")
    switch_and_wait(server)
    third = postgres.take_backup(vols, net)
    psql(server, "INSERT INTO drill VALUES ('m')", db="loomworks")
    switch_and_wait(server)
    archive = {"arch": vols["arch"], "backups": vols["backups"]}

    rc, out = postgres.one_shot(archive, ["bash", "-c", f"cat /backups/{second}/backup_label"])
    start = re.search(r"START WAL LOCATION: \S+ \(file ([0-9A-F]{24})\)", out).group(1)
    before = postgres.ls(archive, "/wal_archive")
    older = [f for f in before if re.match(r"[0-9A-F]{24}", f) and segno(f) < segno(start)]
    assert older, f"the first backup's WAL lies before {start}: {before}"

    # a dry run names what would go and removes nothing
    rc, out = postgres.one_shot(archive, ["prune", "--dry-run"], env={"BACKUP_RETENTION": "2"})
    assert rc == 0, out
    assert f"would remove /backups/{first}" in out
    assert postgres.ls(archive, "/wal_archive") == before

    rc, out = postgres.one_shot(archive, ["prune"], env={"BACKUP_RETENTION": "2"})
    assert rc == 0, out
    assert f"kept 2 base backup(s) (BACKUP_RETENTION=2, oldest {second}, starting in {start})" in out
    assert f"removed 1 backup(s) and {len(older)} WAL file(s)" in out
    assert postgres.ls(archive, "/backups") == [second, third]
    after = postgres.ls(archive, "/wal_archive")
    assert set(after) == set(before) - set(older)
    assert any(f.startswith(start) for f in after)
    # pruning again finds nothing more
    rc, out = postgres.one_shot(archive, ["prune"], env={"BACKUP_RETENTION": "2"})
    assert rc == 0 and "removed 0 backup(s) and 0 WAL file(s)" in out, out

    rc, out = postgres.one_shot(archive, ["verify-archive"])
    assert rc == 0, out
    assert "archive OK" in out and f"complete from base backup {second}" in out
    server.stop(timeout=30)
    assert wait_exited(server) == 0

    # point-in-time restore to just after the oldest kept backup
    pitr = {**archive, "data": postgres.volume("data-pitr")}
    rc, out = postgres.one_shot(pitr, ["restore", "--target-time", noted, "--backup", second])
    assert rc == 0, out
    restored = postgres.run(pitr)
    pg_ready(restored)
    assert drill_tags(restored) == ["a1", "a2", "k"]


def test_prune_refuses_a_bad_retention_and_keeps_everything_without_backups(postgres):
    vols = postgres.volume_set()
    rc, out = postgres.one_shot(vols, ["prune"], env={"BACKUP_RETENTION": "two"})
    assert rc == 1
    assert out.strip() == "pg-prune: error: BACKUP_RETENTION must be a non-negative integer, got 'two'"
    script = "touch /wal_archive/000000010000000000000001.gz && pg-prune"
    rc, out = postgres.one_shot(vols, ["bash", "-c", script])
    assert rc == 0, out
    assert "no complete base backup in /backups: nothing to prune" in out
    assert postgres.ls(vols, "/wal_archive") == ["000000010000000000000001.gz"]


def test_scheduler_backs_up_on_its_interval_prunes_and_reports_failures(postgres):
    net = postgres.network()
    vols = postgres.volume_set()
    server = postgres.run(vols, network=net, aliases=["postgres"])
    pg_ready(server)
    sched = postgres.run({"arch": vols["arch"], "backups": vols["backups"]}, command=["backup-scheduler"],
                         env={"BACKUP_SCHEDULE": "2s", "BACKUP_RETENTION": "2"}, network=net,
                         publish=False, healthcheck=SCHEDULER_HEALTH)
    wait_log(sched, "started: base backup every 2s after the newest backup's start (BACKUP_SCHEDULE=2s), "
                    "keeping 2", 30)
    wait_log(sched, "cycle complete", 120, count=3)
    wait_health(sched, "healthy", 30)
    # the server goes away: one error line, the health check turns unhealthy
    server.stop(timeout=30)
    line = wait_log(sched, "backup-scheduler: error: base backup failed", 60)
    assert "the health check reports unhealthy until a cycle succeeds" in line
    wait_health(sched, "unhealthy", 30)
    r = sched.exec_run(["docker-healthcheck.sh", "backup"])
    assert r.exit_code == 1
    assert r.output.decode().startswith("healthcheck: error: backup: last cycle FAILED at 2")
    assert r.output.decode().strip().endswith(": base backup failed (exit 1)")

    # (no cycle succeeds now) BACKUP_RETENTION=2 kept two backups, and the retention line for
    # the filestore archive is the oldest one's start
    rc, out = exec_sh(sched, ["bash", "-c", "ls -1 /backups"])
    names = [n for n in out.split() if re.fullmatch(r"\d{8}T\d{6}Z", n)]
    assert len(names) == 2, out   # the third cycle pruned the first
    label = f"/backups/{names[0]}/backup_label"
    rc, out = exec_sh(sched, ["bash", "-c", f"cat /filestore_archive/.retain-since; "
                              f"date -d \"$(sed -n 's/^START TIME: //p' {label})\" +%s"])
    line, start = out.split()
    assert line == start, out

    # it comes back: the next attempt succeeds and the service is healthy again
    server.start()
    pg_ready(server)
    wait_health(sched, "healthy", 120)
    sched.stop(timeout=10)
    assert wait_exited(sched) == 0
    assert "backup-scheduler: stopping" in sched.logs().decode()


@pytest.mark.parametrize(("name", "value", "message"), [
    ("BACKUP_SCHEDULE", "sometimes", "BACKUP_SCHEDULE must be an interval N followed by s, m, h or d"),
    ("BACKUP_SCHEDULE", "25:00", "BACKUP_SCHEDULE must be a time HH:MM (00:00..23:59, UTC), got '25:00'"),
])
def test_scheduler_refuses_a_bad_setting_in_one_line(postgres, name, value, message):
    rc, out = postgres.one_shot({}, ["backup-scheduler"], env={name: value})
    assert rc == 1
    assert len(out.strip().splitlines()) == 1 and message in out, out
