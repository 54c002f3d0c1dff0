"""Disaster-recovery drills on one running stack, following postgres/README.md's runbook
command for command (`docker compose stop`, `docker compose run --rm postgres restore ...`,
`docker compose up -d`):

- restore in place after a clean stop: the stop is PostgreSQL's fast shutdown (exit 0), which
  archives the last segment; the last commit before the stop is back (0 lost), the old cluster
  is kept (a crash's unarchived WAL: tests/postgres/test_recovery.py);
- postgres killed (kill -9), then its data volume deleted, without a WAL stream: `up` refuses
  the blank start (one clear line, no cluster, Odoo never starts), `restore --latest` brings back
  what the archive holds, and the loss (acknowledged commits that were only in the dead
  volume's WAL) is measured and reported as a figure: a writer logs every acknowledged id.

Time to recover: from the start of `restore` to every service healthy again.
"""

from __future__ import annotations

import secrets
import subprocess
import threading
import time

import pytest

from tests.support.compose import Stack, docker
from tests.support.rpc import call_kw
from tests.support.wait import wait_for

pytestmark = [pytest.mark.docker, pytest.mark.odoo]

PGDATA = "/var/lib/postgresql/data/pgdata"


@pytest.fixture(scope="module")
def stack(stacks) -> Stack:
    return stacks()


def compose_run(st: Stack, *args: str) -> subprocess.CompletedProcess:
    """`docker compose run --rm postgres ARGS` (the runbook's one-shot commands)."""
    return st.run("run", "--rm", "-T", "postgres", *args, check=False, timeout=900)


def backup(st: Stack) -> None:
    r = compose_run(st, "backup")
    assert r.returncode == 0, r.stderr[-3000:]


def restore_latest(st: Stack) -> tuple[str, float]:
    """The runbook's restore after `docker compose stop odoo postgres`: `restore --latest`, the
    filestore's `restore-filestore --latest`, `up`;
    its output and the seconds from the start of the restore to every service healthy."""
    start = time.monotonic()
    r = compose_run(st, "restore", "--latest")
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-4000:]
    assert "restore complete" in out, out[-4000:]
    files = st.run("run", "--rm", "-T", "--no-deps", "filestore", "restore-filestore", "--latest",
                   check=False)
    assert files.returncode == 0 and "filestore restored" in files.stdout + files.stderr, files.stderr[-2000:]
    try:
        st.up()
        st.wait_healthy(600)
    except (RuntimeError, AssertionError, TimeoutError) as e:
        raise AssertionError(f"{e}\n{st.logs('odoo', 'postgres', tail=80)}") from e
    return out, time.monotonic() - start


def in_volume(st: Stack, test: str) -> bool:
    """A shell test on the postgres service's volumes (a one-shot container, no server)."""
    return compose_run(st, "bash", "-c", test).returncode == 0


def present(st: Stack, tag: str) -> set[int]:
    http = st.login()
    return set(call_kw(http, st.url(), "res.partner", "search", [("name", "like", f"{tag} %")]))


def test_runbook_restore_after_a_clean_stop_loses_nothing(stack: Stack, drill):
    backup(stack)
    http = stack.login()
    tag = f"clean-{secrets.token_hex(4)}"
    ids = call_kw(http, stack.url(), "res.partner", "create", [{"name": f"{tag} {i}"} for i in range(20)])
    stack.archive_wal()
    last = call_kw(http, stack.url(), "res.partner", "create", {"name": f"{tag} last"})
    segment = stack.psql("SELECT pg_walfile_name(pg_current_wal_lsn())")
    stack.run("stop", "odoo", "postgres")
    # PostgreSQL's own fast shutdown (exit 0), not SIGKILL at the end of the grace period (137)
    assert stack.inspect("postgres")["State"]["ExitCode"] == 0, stack.logs("postgres", tail=20)
    # a clean stop switches and archives the last segment (PostgreSQL's shutdown with
    # archive_mode=on): the archive itself holds the last commit
    assert in_volume(stack, f"test -e /wal_archive/{segment}.gz"), "the stop left its segment unarchived"
    out, took = restore_latest(stack)
    kept = [ln.split("moved the old cluster aside to ", 1)[1].split(" ", 1)[0]
            for ln in out.splitlines() if "moved the old cluster aside to " in ln]
    assert len(kept) == 1, out[-3000:]
    assert in_volume(stack, f"test -s {kept[0]}/PG_VERSION"), "the old cluster must be kept"
    found = present(stack, tag)
    assert last in found, "the last commit before the stop is missing"
    assert set(ids) <= found
    n = len(ids) + 1
    backup(stack)  # the runbook's last step: a new base backup of the restored cluster
    drill("restore --latest in place after a clean `docker compose stop` (runbook)",
          f"{n}/{n} acknowledged records present, the last one committed just before the stop (its WAL "
          f"segment {segment} archived by the clean stop): 0 lost; the old cluster kept in {kept[0]}", took)


class Writer:
    """Creates one partner per JSON-RPC call through nginx and Odoo, logging the id of every
    create Odoo acknowledged, in order; stops at the first failure after ``arm()``."""

    def __init__(self, st: Stack, tag: str) -> None:
        self.st, self.tag, self.acked, self.failed = st, tag, [], threading.Event()
        self.http = st.login()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        i = 0
        while not self._stop.is_set():
            i += 1
            try:
                self.acked.append(call_kw(self.http, self.st.url(), "res.partner", "create",
                                          {"name": f"{self.tag} {i}"}))
            except Exception:  # the database is gone: the writer's last answer
                self.failed.set()
                return

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(60)


def test_kill9_then_data_volume_deleted_without_wal_stream_reports_the_loss(stack: Stack, drill):
    backup(stack)  # the regular base backup the archive replays from
    writer = Writer(stack, f"crash-{secrets.token_hex(4)}")
    try:
        wait_for(lambda: len(writer.acked) >= 20, 180, "20 acknowledged writes", interval=0.2)
        archived = len(writer.acked)  # acknowledged before the switch: in the segment it closes
        stack.archive_wal()  # what archive_timeout does every 5 min: these writes reach the archive
        wait_for(lambda: len(writer.acked) >= archived + 30, 180, "30 more acknowledged writes", interval=0.2)
        pg = stack.container_id("postgres")
        docker("kill", "--signal", "KILL", pg)  # SIGKILL to the container's init: every process dies
        wait_for(writer.failed.is_set, 120, "the writer to see the database gone", interval=0.2)
    finally:
        writer.stop()
    acked = list(writer.acked)
    assert stack.health("postgres") == "exited"

    # the volume is lost: the archive and the backups are all that is left
    stack.run("stop", "odoo")
    odoo_started = stack.inspect("odoo")["State"]["StartedAt"]
    stack.run("rm", "-f", "-s", "postgres")
    docker("volume", "rm", f"{stack.project}_postgres_data")

    # `docker compose up` on the empty data volume: postgres refuses, nothing else starts
    try:
        up_rc = stack.run("up", "-d", "--no-build", check=False, timeout=180).returncode
    except subprocess.TimeoutExpired:
        up_rc = None  # compose still waiting for a healthy postgres: it never came
    assert up_rc != 0
    wait_for(lambda: "docker compose run --rm postgres restore --latest" in stack.logs("postgres"), 60,
             "postgres's refusal", interval=1)
    stack.run("stop", "odoo", "postgres")
    log = stack.logs("postgres", tail=200)
    refusals = {ln.split("| ", 1)[-1] for ln in log.splitlines() if "error:" in ln}
    assert len(refusals) == 1, refusals
    refusal = refusals.pop()
    assert "is empty but /wal_archive holds" in refusal
    assert "initialising" not in log
    assert not in_volume(stack, f"test -e {PGDATA}/PG_VERSION"), "a blank cluster was created"
    odoo = stack.inspect("odoo")["State"]
    assert not odoo["Running"] and odoo["StartedAt"] == odoo_started, "odoo started on a blank database"
    drill("edge: empty data volume beside a non-empty WAL archive (`docker compose up`)",
          "postgres refuses with one clear line naming `restore --latest`; no cluster created; "
          "Odoo never started, so no blank database")

    out, took = restore_latest(stack)
    assert "is empty: no old cluster to keep" in out
    found = present(stack, writer.tag)
    kept = [a in found for a in acked]
    survivors = kept.index(False) if False in kept else len(kept)
    assert kept == [True] * survivors + [False] * (len(kept) - survivors), \
        "the survivors must be exactly the oldest acknowledged commits (no hole in the archive)"
    assert survivors >= archived, f"{archived} writes archived before the kill, {survivors} came back"
    lost = len(acked) - survivors
    print(f"\nkill -9 + data volume deleted, no WAL stream: {survivors}/{len(acked)} present, {lost} lost")
    backup(stack)
    drill("postgres killed (kill -9), then its data volume deleted, no WAL stream",
          f"restore --latest from the archive: {survivors}/{len(acked)} acknowledged commits present, "
          f"{lost} lost (they were only in the unarchived WAL segment of the deleted volume; "
          f"archive_timeout = 300 s bounds it); every one of the {archived} archived before the kill back, "
          "the survivors are exactly the oldest, no hole", took,
          expected_loss=True)
