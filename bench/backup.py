"""Section `backup`: base backup and restore (to latest) of this project (postgres/bin/pg-backup;
`restore --latest` as shipped, a container of the image) against pgBackRest (`backup
--type=full`, compress-type=gz, then `restore` and recovery until the server is promoted), on
the same database (pgbench -i, about 1 GB; quick: about 120 MB); and pgbench's commit latency
with WAL_STREAM off against on (a synchronous pg_receivewal through a slot, as the walstream
service runs it).

Runs as root: the cluster, the tools and pg_receivewal run as the postgres user, as in the image.
Correctness: both restores bring back every pgbench_accounts row.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path

from bench import Context, say
from bench.report import BenchFailure, Row
from tests.support.images import build, tag
from tests.support.net import free_port
from tests.support.pg import (
    LIB_ENV,
    PG_BIN,
    REPO,
    PgCluster,
    archive_settings,
    make_archive_dir,
    run_as_postgres,
)
from tests.support.wait import wait_for

BIN = REPO / "postgres" / "bin"
PGBR = "pgBackRest 2.45 (backup --type=full, compress-type=gz; restore + recovery)"


def as_postgres(*cmd: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    r = run_as_postgres(*cmd, env=env)
    if r.returncode != 0:
        raise BenchFailure(f"failed ({r.returncode}): {' '.join(map(str, cmd))[:300]}\n{r.stderr[-2000:]}")
    return r


def timed(*cmd: str | Path, env: dict[str, str] | None = None) -> float:
    t0 = time.monotonic()
    as_postgres(*cmd, env=env)
    return time.monotonic() - t0


def pgbackrest_conf(root: Path, cluster: PgCluster) -> str:
    conf = root / "pgbackrest.conf"
    conf.write_text(f"[global]\nrepo1-path={root}/repo\nlog-path={root}/log\nlock-path={root}/lock\n"
                    f"spool-path={root}/spool\nlog-level-console=warn\nlog-level-file=off\n"
                    f"compress-type=gz\narchive-async=n\n\n"
                    f"[bench]\npg1-path={cluster.datadir}\npg1-port={cluster.port}\npg1-socket-path={cluster.root}\n")
    return f"--config={conf} --stanza=bench"


def start_restored(datadir: Path, sock: Path, password: str) -> tuple[subprocess.Popen, int]:
    """Start a restored data directory on a free port; returns once recovery has promoted it."""
    port = free_port()
    log = datadir.parent / "server.log"
    with log.open("w") as out:
        proc = subprocess.Popen(["runuser", "-u", "postgres", "--", str(PG_BIN / "postgres"),
                                 "-D", str(datadir), "-c", f"port={port}",
                                 "-c", f"unix_socket_directories={sock}",
                                 "-c", "listen_addresses=", "-c", "archive_mode=off"],
                                stdout=out, stderr=subprocess.STDOUT)

    def promoted() -> bool:
        if proc.poll() is not None:
            raise BenchFailure(f"restored server in {datadir} exited ({proc.returncode}): "
                               f"{log.read_text()[-1500:]}")
        r = subprocess.run([str(PG_BIN / "psql"), "-h", str(sock), "-p", str(port), "-U", "postgres", "-XAtq",
                            "-c", "SELECT pg_is_in_recovery()"], capture_output=True, text=True, check=False,
                           env={"PGPASSWORD": password})
        return r.stdout.strip() == "f"

    wait_for(promoted, 3600, f"{datadir} to finish recovery", interval=0.2)
    return proc, port


def count_rows(sock: Path, port: int, password: str) -> int:
    r = subprocess.run([str(PG_BIN / "psql"), "-h", str(sock), "-p", str(port), "-U", "postgres", "-XAtq",
                        "-c", "SELECT count(*) FROM pgbench_accounts"],
                       capture_output=True, text=True, check=True, env={"PGPASSWORD": password})
    return int(r.stdout.strip())


def latency(cluster: PgCluster, seconds: int) -> float:
    r = subprocess.run([str(PG_BIN / "pgbench"), "-N", "-c", "4", "-j", "2", "-T", str(seconds), "-n"],
                       env=cluster.env, capture_output=True, text=True, check=True)
    m = re.search(r"latency average = ([\d.]+) ms", r.stdout)
    if not m:
        raise BenchFailure(f"no latency in pgbench's output:\n{r.stdout[-1000:]}")
    return float(m.group(1))


def commit_latency(cluster: PgCluster, stream_dir: Path, seconds: int) -> tuple[float, float]:
    """pgbench -N latency without, then with, a synchronous pg_receivewal (WAL_STREAM on)."""
    off = latency(cluster, seconds)
    env = {"PGPASSWORD": cluster.password, "PGAPPNAME": "loomworks_walstream"}
    conn = ["-h", "127.0.0.1", "-p", str(cluster.port), "-U", "postgres"]
    as_postgres(PG_BIN / "pg_receivewal", *conn, "-D", stream_dir, "-S", "bench", "--create-slot", env=env)
    recv = subprocess.Popen(["runuser", "-u", "postgres", "--", str(PG_BIN / "pg_receivewal"), *conn,
                             "-D", str(stream_dir), "-S", "bench", "--synchronous", "--no-loop", "-w"],
                            env={**cluster.env, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        cluster.psql("ALTER SYSTEM SET synchronous_standby_names = 'loomworks_walstream'")
        cluster.psql("SELECT pg_reload_conf()")
        wait_for(lambda: cluster.psql("SELECT sync_state FROM pg_stat_replication") == "sync", 60,
                 "pg_receivewal to be the synchronous standby")
        on = latency(cluster, seconds)
    finally:
        cluster.psql("ALTER SYSTEM RESET synchronous_standby_names")
        cluster.psql("SELECT pg_reload_conf()")
        recv.terminate()
        recv.wait(30)
    return off, on


def run(ctx: Context) -> list[Row]:
    if not shutil.which("pgbackrest"):
        raise BenchFailure("pgbackrest is not installed (Debian package pgbackrest)")
    scale, seconds = (8, 10) if ctx.quick else (64, 30)
    arch, backups, work = make_archive_dir(), make_archive_dir(), make_archive_dir()
    cluster = PgCluster(settings=archive_settings(arch, max_wal_size="'4GB'")).start()
    raw: dict = {"scale": scale}
    try:
        subprocess.run([str(PG_BIN / "pgbench"), "-i", "-s", str(scale), "-q"], env=cluster.env, check=True,
                       capture_output=True)
        rows = int(cluster.psql("SELECT count(*) FROM pgbench_accounts"))
        pw = cluster.password
        raw["db_mb"] = round(int(cluster.psql("SELECT pg_database_size('postgres')")) / 2**20)
        say(f"backup: database of {raw['db_mb']} MB (pgbench -s {scale})")
        env = {**LIB_ENV, "PG_MAJOR": "15", "BACKUP_DIR": str(backups), "WAL_ARCHIVE_DIR": str(arch),
               "BACKUP_HOST": "127.0.0.1", "BACKUP_PORT": str(cluster.port), "POSTGRES_USER": "postgres",
               "POSTGRES_PASSWORD": cluster.password}
        raw["ours_backup_s"] = timed(BIN / "pg-backup", env=env)
        # pgBackRest on the same cluster, archiving into its own repository from now on
        opts = pgbackrest_conf(work, cluster)
        pgbr_env = {"PGPASSWORD": cluster.password}
        cluster.psql(f"ALTER SYSTEM SET archive_command = 'pgbackrest {opts} archive-push %p'")
        cluster.psql("SELECT pg_reload_conf()")
        as_postgres("pgbackrest", *opts.split(), "stanza-create", env=pgbr_env)
        t0 = time.monotonic()
        as_postgres("pgbackrest", *opts.split(), "--type=full", "backup", env=pgbr_env)
        raw["pgbackrest_backup_s"] = time.monotonic() - t0
        raw["off_ms"], raw["on_ms"] = commit_latency(cluster, make_archive_dir(), seconds)
        cluster.psql("ALTER SYSTEM RESET archive_command")
        cluster.psql("SELECT pg_reload_conf()")
        cluster.stop()

        sock = make_archive_dir()
        ours = make_archive_dir() / "data"
        as_postgres("mkdir", "-m", "700", ours)
        # as shipped: `docker compose run --rm postgres restore --latest` (recovery until promoted)
        image = build(tag("postgres"))
        t0 = time.monotonic()
        r = subprocess.run(["docker", "run", "--rm", "--network", "none", "-v", f"{backups}:/backups",
                            "-v", f"{arch}:/wal_archive", "-v", f"{ours}:/var/lib/postgresql/data", image,
                            "restore", "--latest"], capture_output=True, text=True, check=False)
        raw["ours_restore_s"] = time.monotonic() - t0
        if r.returncode != 0:
            raise BenchFailure(f"restore --latest failed:\n{r.stdout[-2000:]}{r.stderr[-2000:]}")
        subprocess.run(["chown", "-R", "postgres:postgres", str(ours), str(arch), str(backups)], check=True)
        # the image's PGDATA is a directory inside the volume (/var/lib/postgresql/data/pgdata)
        proc, port = start_restored(ours / "pgdata", sock, pw)
        ours_rows = count_rows(sock, port, pw)
        proc.terminate()
        proc.wait(60)
        theirs = make_archive_dir() / "data"
        t0 = time.monotonic()
        as_postgres("mkdir", "-m", "700", theirs)
        as_postgres("pgbackrest", *opts.split(), f"--pg1-path={theirs}", "restore", env=pgbr_env)
        proc, port = start_restored(theirs, sock, pw)
        raw["pgbackrest_restore_s"] = time.monotonic() - t0
        theirs_rows = count_rows(sock, port, pw)
        proc.terminate()
        proc.wait(60)
        if not rows == ours_rows == theirs_rows:
            raise BenchFailure(f"rows: source {rows}, restore {ours_rows}, pgBackRest {theirs_rows}")
        raw["rows"] = rows
    finally:
        cluster.destroy()
        for d in (arch, backups, work):
            shutil.rmtree(d, ignore_errors=True)
    ctx.raw["backup"] = raw
    say(f"backup: {raw}")
    size = f"{raw['db_mb']} MB database"
    return [
        Row("7 backup", f"base backup ({size}; plain, uncompressed, verified)",
            round(raw["ours_backup_s"], 1), "s", round(raw["pgbackrest_backup_s"], 1), PGBR),
        Row("7 backup", f"restore to latest ({size}), until the server is promoted",
            round(raw["ours_restore_s"], 1), "s", round(raw["pgbackrest_restore_s"], 1), PGBR),
        Row("7 backup", "pgbench -N commit latency (4 clients), WAL_STREAM=on (synchronous pg_receivewal)",
            round(raw["on_ms"], 2), "ms", round(raw["off_ms"], 2), "WAL_STREAM=off (same cluster)",
            note="the cost of zero RPO"),
    ]
