"""The loomworks/postgres image as a container: settings, archiving, auth, init, persistence."""

from __future__ import annotations

import psycopg2
import pytest

from tests.support.containers import (
    PG_APP_PASSWORD,
    PG_PASSWORD,
    exec_sh,
    pg_ready,
    psql,
    runbook_command,
    secret_file,
    wait_exited,
)
from tests.support.net import host_port
from tests.support.pg import SEGMENT
from tests.support.wait import wait_for

pytestmark = pytest.mark.docker


def connect(c, user: str, password: str, db: str = "postgres"):
    return psycopg2.connect(host="127.0.0.1", port=host_port(c, 5432), user=user, password=password,
                            dbname=db, connect_timeout=5)


def test_settings_archiving_and_archive_timeout_in_container(postgres):
    c = postgres.run(postgres.volume_set())
    pg_ready(c)
    assert psql(c, "SHOW wal_level") == "replica" and psql(c, "SHOW archive_mode") == "on"
    assert psql(c, "SELECT setting || unit FROM pg_settings WHERE name = 'archive_timeout'") == "300s"
    assert psql(c, "SHOW archive_command") == "/usr/local/bin/archive-wal %p %f"
    assert psql(c, "SHOW data_checksums") == "on"
    psql(c, "CREATE TABLE t AS SELECT g FROM generate_series(1, 5000) g")
    name = psql(c, "SELECT pg_walfile_name(pg_switch_wal())")
    gz = f"/wal_archive/{name}.gz"
    wait_for(lambda: exec_sh(c, ["test", "-f", gz])[0] == 0, 30, f"{gz} in the archive volume")
    rc, out = exec_sh(c, ["bash", "-c", "for f in /wal_archive/*.gz; do gzip -t \"$f\" || exit 1; done; "
                                        f"gzip -dc {gz} | wc -c; stat -c %a /wal_archive {gz}"])
    assert rc == 0, out
    size, dir_mode, file_mode = out.split()
    assert int(size) == SEGMENT and (dir_mode, file_mode) == ("700", "600")
    # test-only override: a short archive_timeout archives an idle-but-written segment
    psql(c, "ALTER SYSTEM SET archive_timeout = 1")
    psql(c, "SELECT pg_reload_conf()")
    current = psql(c, "SELECT pg_walfile_name(pg_current_wal_lsn())")
    psql(c, "INSERT INTO t VALUES (-1)")
    wait_for(lambda: exec_sh(c, ["test", "-f", f"/wal_archive/{current}.gz"])[0] == 0, 30,
             "archive_timeout to archive the partly written segment")
    assert psql(c, "SELECT failed_count FROM pg_stat_archiver") == "0"


def test_roles_and_scram_auth_over_tcp(postgres):
    c = postgres.run(postgres.volume_set())
    pg_ready(c)
    with connect(c, "odoo", PG_APP_PASSWORD) as conn, conn.cursor() as cur:
        cur.execute("SELECT rolsuper, rolcreatedb, rolcreaterole, rolcanlogin FROM pg_roles"
                    " WHERE rolname = current_user")
        assert cur.fetchone() == (False, True, False, True)
    conn.close()
    conn = connect(c, "odoo", PG_APP_PASSWORD)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("CREATE DATABASE odoo_created_db")  # Odoo's database manager needs CREATEDB
        with pytest.raises(psycopg2.Error):
            cur.execute("CREATE ROLE sneaky SUPERUSER")
    conn.close()
    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        connect(c, "odoo", "wrong-password")
    with connect(c, "postgres", PG_PASSWORD, db="loomworks") as su, su.cursor() as cur:
        cur.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        assert cur.fetchone() == (True,)
    su.close()
    assert psql(c, "SELECT rolpassword LIKE 'SCRAM-SHA-256$%' FROM pg_authid WHERE rolname = 'odoo'") == "t"
    hba = psql(c, "SELECT DISTINCT type || ':' || auth_method FROM pg_hba_file_rules ORDER BY 1")
    assert hba.split() == ["host:scram-sha-256", "local:trust"]
    # the server runs as postgres (uid 999), not root
    rc, out = exec_sh(c, ["bash", "-c", "stat -c %u /proc/$(head -1 $PGDATA/postmaster.pid)"])
    assert (rc, out.strip()) == (0, "999")


def test_persistence_init_idempotence_secrets_and_fast_shutdown(postgres, tmp_path):
    vols = postgres.volume_set()
    c1 = postgres.run(vols, env={"POSTGRES_PASSWORD": None, "POSTGRES_PASSWORD_FILE": "/run/secrets/pg"},
                   volumes=secret_file(tmp_path, "pg", PG_PASSWORD))
    pg_ready(c1)
    c1.reload()
    assert PG_PASSWORD not in str(c1.attrs["Config"]), "password visible in docker inspect"
    psql(c1, "CREATE TABLE kept(x text); INSERT INTO kept VALUES ('survives')", db="loomworks")
    name = psql(c1, "SELECT pg_walfile_name(pg_switch_wal())")
    wait_for(lambda: exec_sh(c1, ["test", "-f", f"/wal_archive/{name}.gz"])[0] == 0, 30, "archiving")
    idle = connect(c1, "odoo", PG_APP_PASSWORD)  # an idle session must not delay shutdown
    c1.kill(signal="SIGTERM")
    assert wait_exited(c1, timeout=30) == 0
    logs1 = c1.logs().decode()
    assert "received fast shutdown request" in logs1 and "database system is shut down" in logs1
    assert PG_PASSWORD not in logs1 and PG_APP_PASSWORD not in logs1
    idle.close()
    c1.remove(v=False)
    postgres.containers.remove(c1)

    c2 = postgres.run(vols, env={"POSTGRES_PASSWORD": "a-different-password", "DB_USER": None,
                                 "DB_PASSWORD": None})
    pg_ready(c2)
    logs2 = c2.logs().decode()
    assert "existing cluster" in logs2 and "initialising" not in logs2
    assert psql(c2, "SELECT x FROM kept", db="loomworks") == "survives"
    assert exec_sh(c2, ["test", "-f", f"/wal_archive/{name}.gz"])[0] == 0
    connect(c2, "postgres", PG_PASSWORD).close()  # init did not run again: the old password holds
    with pytest.raises(psycopg2.OperationalError):
        connect(c2, "postgres", "a-different-password")


@pytest.mark.parametrize(("env", "message"), [
    ({"POSTGRES_PASSWORD": None}, "POSTGRES_PASSWORD is required"),
    ({"DB_PASSWORD": None}, "DB_PASSWORD (or DB_PASSWORD_FILE) is required"),
    ({"DB_USER": None}, "DB_PASSWORD is set but DB_USER is empty"),
    ({"POSTGRES_USER": "Bad-Name"}, "POSTGRES_USER must be a lower-case SQL name"),
    ({"DB_USER": "postgres"}, "DB_USER must differ from POSTGRES_USER"),
    ({"POSTGRES_PASSWORD_FILE": "/run/secrets/x"}, "both POSTGRES_PASSWORD and POSTGRES_PASSWORD_FILE"),
    ({"POSTGRES_PASSWORD": None, "POSTGRES_PASSWORD_FILE": "/nope"}, "POSTGRES_PASSWORD_FILE: cannot read"),
], ids=["no-password", "app-user-without-password", "app-password-without-user", "bad-user",
        "app-user-is-superuser", "both-password-and-file", "unreadable-file"])
def test_bad_environment_stops_with_one_clear_line(postgres, env, message):
    c = postgres.run({}, env=env)
    assert wait_exited(c, timeout=60) != 0
    out = c.logs().decode()
    errors = [line for line in out.splitlines() if "error:" in line]
    assert len(errors) == 1, out
    assert message in errors[0] and "initialising" not in out
    assert PG_PASSWORD not in out and PG_APP_PASSWORD not in out


def test_deprecated_app_db_names_still_create_the_login_with_one_warning_each(postgres):
    c = postgres.run(postgres.volume_set(), env={"DB_USER": None, "DB_PASSWORD": None,
                                                 "APP_DB_USER": "odoo", "APP_DB_PASSWORD": PG_APP_PASSWORD})
    pg_ready(c)
    out = c.logs().decode()
    for old, new in (("APP_DB_USER", "DB_USER"), ("APP_DB_PASSWORD", "DB_PASSWORD")):
        assert out.count(f"entrypoint: warning: {old} is deprecated; use {new}\n") == 1, out
    assert "created login role odoo" in out and PG_APP_PASSWORD not in out
    connect(c, "odoo", PG_APP_PASSWORD).close()


def test_restart_does_not_reinitialise_and_files_belong_to_postgres(postgres):
    """A restart is a no-op init; everything in the volumes stays owned by uid 999."""
    vols = postgres.volume_set()
    c = postgres.run(vols)
    pg_ready(c)
    c.restart(timeout=30)
    pg_ready(c)
    assert c.logs().decode().count("initialisation complete") == 1
    find = "find $PGDATA /wal_archive /backups ! -user postgres | wc -l"
    rc, out = exec_sh(c, ["bash", "-c", find], user="root")
    assert (rc, out.strip()) == (0, "0")


def test_empty_data_next_to_an_archive_is_a_restore_not_a_first_start(postgres):
    """An empty data volume beside a WAL archive and backups of a cluster: the entrypoint refuses
    with one line naming the restore command and creates nothing; ALLOW_NEW_CLUSTER=true starts a
    new cluster and moves the old archive and backups aside (kept)."""
    vols = postgres.volume_set()
    c = postgres.run(vols)
    pg_ready(c)
    name = psql(c, "SELECT pg_walfile_name(pg_switch_wal())")
    wait_for(lambda: exec_sh(c, ["test", "-f", f"/wal_archive/{name}.gz"])[0] == 0, 30, "archiving")
    assert exec_sh(c, ["pg-backup"], user="postgres")[0] == 0
    c.stop(timeout=30)
    assert wait_exited(c) == 0
    # the runbook's first step to a new cluster, as written: the old one is set aside
    rc, out = postgres.one_shot(vols, runbook_command("Start a new, empty cluster on purpose"))
    assert rc == 0, out

    refused = postgres.run(vols)
    assert wait_exited(refused) == 1
    out = refused.logs().decode()
    errors = [line for line in out.splitlines() if "error:" in line]
    assert len(errors) == 1, out
    assert "is empty but /wal_archive holds" in errors[0]
    assert "docker compose run --rm postgres restore --latest" in errors[0]
    assert "initialising" not in out
    rc, out = postgres.one_shot(vols, ["bash", "-c", "ls -A /var/lib/postgresql/data/pgdata | wc -l"])
    assert (rc, out.strip()) == (0, "0"), "no cluster may be created"

    fresh = postgres.run(vols, env={"ALLOW_NEW_CLUSTER": "true"})
    pg_ready(fresh)
    out = fresh.logs().decode()
    assert "moved the old contents of /wal_archive aside into /wal_archive/previous-" in out
    assert "moved the old contents of /backups aside into /backups/previous-" in out
    kept = f"ls /wal_archive/previous-*/{name}.gz /backups/previous-*/ | wc -l"
    rc, out = exec_sh(fresh, ["bash", "-c", kept])
    assert rc == 0 and int(out) >= 2, out
    rc, out = exec_sh(fresh, ["bash", "-c", "test -s /var/lib/postgresql/data/pgdata.set-aside-*/PG_VERSION"])
    assert rc == 0, "the old cluster is kept"


def test_cluster_at_the_volume_root_moves_into_pgdata(postgres):
    """A data volume of the former layout (the cluster at the volume's root) keeps its data."""
    vols = postgres.volume_set()
    c = postgres.run(vols)
    pg_ready(c)
    psql(c, "CREATE TABLE kept(x text); INSERT INTO kept VALUES ('survives')", db="loomworks")
    c.stop(timeout=30)
    assert wait_exited(c) == 0
    old_layout = "cd /var/lib/postgresql/data && mv pgdata/* . && rmdir pgdata && ls PG_VERSION"
    rc, out = postgres.one_shot(vols, ["bash", "-c", old_layout])
    assert rc == 0, out
    c2 = postgres.run(vols)
    pg_ready(c2)
    assert "into /var/lib/postgresql/data/pgdata" in c2.logs().decode()
    assert psql(c2, "SELECT x FROM kept", db="loomworks") == "survives"
