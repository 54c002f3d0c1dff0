"""Section `wal`: postgres/bin/archive-wal against the docs' `gzip < %p > %f.gz` and pgBackRest's
archive-push on the same real WAL segments (one process per segment, as an archive_command), and
archiver lag under pgbench; as shipped and like for like (bench/README.md, "WAL rows"). Runs as
root (clusters and archivers as postgres). Fails when an archiver fails under load."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import time
from pathlib import Path

from bench import Context, sampling, say
from bench.report import BenchFailure, Row
from tests.support.pg import ARCHIVE_WAL, LIB_ENV, PG_BIN, PgCluster, make_archive_dir, run_as_postgres
from tests.support.wait import wait_for

MB = 1024 * 1024
THREADS = os.cpu_count() or 1  # pigz's default: one thread per online core
DOCS = "docs one-liner `gzip < %p > %f.gz`: gzip -6, 1 thread, no fsync"
ONE_LINER_1 = "one-liner `gzip -1 < %p > %f.gz`: 1 thread, no fsync"


def methods(shim: Path) -> dict[str, tuple[str, str, dict[str, str]]]:
    """key -> (what it is, archive command with %p %f %o, extra environment)."""
    gzip_only = {"PATH": f"{shim}:{os.environ['PATH']}"}
    aw = f"{ARCHIVE_WAL} %p %f %o"
    return {
        # level 1 is archive-wal's default, set here so that no WAL_GZIP_LEVEL of the caller leaks in
        "shipped": (f"archive-wal as shipped: pigz -1, {THREADS} threads, verify + 2 fsyncs", aw,
                    {"WAL_GZIP_LEVEL": "1"}),
        "pigz6": (f"archive-wal at level 6: pigz -6, {THREADS} threads", aw, {"WAL_GZIP_LEVEL": "6"}),
        "gzip1": ("archive-wal forced to gzip -1, 1 thread", aw, {**gzip_only, "WAL_GZIP_LEVEL": "1"}),
        "gzip6": ("archive-wal forced to gzip -6, 1 thread", aw, {**gzip_only, "WAL_GZIP_LEVEL": "6"}),
        "gzip1_fsync": ("gzip -1 + fsync, 1 thread", "gzip -1 < %p > %o/%f.gz && sync %o/%f.gz", {}),
        "oneliner1": (ONE_LINER_1, "gzip -1 < %p > %o/%f.gz", {}),
        "docs": (DOCS, "gzip < %p > %o/%f.gz", {}),
    }


def gzip_shim(root: Path) -> Path:
    """A directory whose `pigz` runs gzip: archive-wal picks pigz when it finds one."""
    shim = root / "gzip-shim"
    shim.mkdir(mode=0o755)
    (shim / "pigz").write_text('#!/bin/sh\nexec gzip "$@"\n')
    (shim / "pigz").chmod(0o755)
    return shim


def as_postgres(script: str, env: dict[str, str] | None = None) -> None:
    r = run_as_postgres("bash", "-c", "set -e\n" + script, env=env)
    if r.returncode != 0:
        raise BenchFailure(f"failed ({r.returncode}): {script[:300]}\n{r.stderr[-2000:]}")


def timed(label: str, segs: list[Path], command: str, out: Path, env: dict[str, str] | None = None) -> dict:
    """``command`` once per segment (as postgres, %p/%f/%o substituted): MB/s and compression ratio."""
    script = "\n".join(command.replace("%p", str(s)).replace("%f", s.name).replace("%o", str(out))
                       for s in segs)
    as_postgres("sync")
    t0 = time.monotonic()
    as_postgres(script, env)
    elapsed = time.monotonic() - t0
    raw = sum(s.stat().st_size for s in segs)
    packed = sum(p.stat().st_size for p in out.rglob("*.gz"))
    return {"method": label, "seconds": round(elapsed, 3), "mb_per_s": round(raw / MB / elapsed, 1),
            "ratio": round(raw / packed, 1) if packed else None}


def pgbackrest(cluster: PgCluster, segs: list[Path], level: int) -> dict:
    """archive-push of every segment into a new repository (gz at ``level``, synchronous: one process)."""
    root = make_archive_dir()
    (root / "pgbackrest.conf").write_text(
        f"[global]\nrepo1-path={root}/repo\nlog-path={root}/log\nlock-path={root}/lock\n"
        f"spool-path={root}/spool\nlog-level-console=warn\nlog-level-file=off\n"
        f"compress-type=gz\ncompress-level={level}\narchive-async=n\n\n"
        f"[bench]\npg1-path={cluster.datadir}\npg1-port={cluster.port}\npg1-socket-path={cluster.root}\n")
    opts = f"--config={root}/pgbackrest.conf --stanza=bench"
    env = {"PGPASSWORD": cluster.password}
    as_postgres(f"pgbackrest {opts} stanza-create", env)
    try:
        return timed(f"pgBackRest archive-push: gz level {level}, 1 process", segs,
                     f"pgbackrest {opts} --archive-mode-check=n archive-push %p", root / "repo", env)
    finally:
        shutil.rmtree(root)


def best(runs: list[dict]) -> dict:
    return {**max(runs, key=lambda r: r["mb_per_s"]), "runs_mb_per_s": [r["mb_per_s"] for r in runs]}


def throughput(ctx: Context, scale: int, repeat: int) -> tuple[dict, dict[str, dict]]:
    seg_dir = make_archive_dir()
    cluster = PgCluster(settings={"wal_level": "replica", "archive_mode": "on", "max_wal_size": "'4GB'",
                                  "archive_command": f"'cp %p {seg_dir}/%f'"}).start()
    results: dict[str, dict] = {}
    try:
        subprocess.run([str(PG_BIN / "pgbench"), "-i", "-s", str(scale), "-q"], env=cluster.env, check=True,
                       capture_output=True)
        cluster.psql("SELECT pg_switch_wal()")
        status = cluster.datadir / "pg_wal" / "archive_status"
        wait_for(lambda: not list(status.glob("*.ready")), 120, "segments copied")
        segs = sorted(p for p in seg_dir.iterdir() if len(p.name) == 24)
        corpus = {"segments": len(segs), "mb": round(sum(s.stat().st_size for s in segs) / MB),
                  "source": f"pgbench -i -s {scale}"}
        say(f"wal: corpus of {corpus['segments']} real segments ({corpus['mb']} MB)")
        for key, (label, command, env) in methods(gzip_shim(ctx.tmp)).items():
            runs = []
            for _ in range(repeat):
                out = make_archive_dir()
                runs.append(timed(label, segs, command, out, env))
                shutil.rmtree(out)
            results[key] = best(runs)
        for level in (1, 6):
            results[f"pgbackrest{level}"] = best([pgbackrest(cluster, segs, level) for _ in range(repeat)])
        for r in results.values():
            say(f"  {r['method']}: {r['mb_per_s']} MB/s, ratio {r['ratio']}")
    finally:
        cluster.destroy()
        shutil.rmtree(seg_dir, ignore_errors=True)
    return corpus, results


def lag_under_load(label: str, archive_command: str, scale: int, seconds: int) -> dict:
    """pgbench -i (bulk load) then TPC-B for ``seconds``; pg_wal/archive_status sampled every 0.25 s."""
    arch = make_archive_dir()
    cluster = PgCluster(settings={"wal_level": "replica", "archive_mode": "on", "max_wal_size": "'4GB'",
                                  "archive_command": f"'{archive_command.replace('%o', str(arch))}'"}).start()
    status = cluster.datadir / "pg_wal" / "archive_status"
    samples: list[int] = []
    try:
        lsn0 = cluster.psql("SELECT pg_current_wal_lsn()")
        with sampling(lambda: samples.append(len(list(status.glob("*.ready"))))):
            t0 = time.monotonic()
            for args in (["-i", "-s", str(scale), "-q"], ["-c", "4", "-j", "2", "-T", str(seconds), "-n"]):
                subprocess.run([str(PG_BIN / "pgbench"), *args], env=cluster.env, check=True,
                               capture_output=True)
            load_s = time.monotonic() - t0
            wal_mb = int(cluster.psql(f"SELECT pg_current_wal_lsn() - '{lsn0}'::pg_lsn")) / MB
            t1 = time.monotonic()
            wait_for(lambda: not list(status.glob("*.ready")), 600, "archiver to catch up")
            catch_up = time.monotonic() - t1
        failed = int(cluster.psql("SELECT failed_count FROM pg_stat_archiver"))
    finally:
        cluster.destroy()
        shutil.rmtree(arch, ignore_errors=True)
    return {"archiver": label, "load_seconds": round(load_s, 1), "wal_mb": round(wal_mb),
            "wal_mb_per_s": round(wal_mb / load_s, 1), "max_ready": max(samples),
            "mean_ready": round(statistics.mean(samples), 1), "catch_up_seconds": round(catch_up, 1),
            "failed_count": failed}


def run(ctx: Context) -> list[Row]:
    # without pigz, archive-wal would run gzip: the rows would lie
    if missing := [t for t in ("pigz", "pgbackrest") if not shutil.which(t)]:
        raise BenchFailure(f"{', '.join(missing)} not installed (the host tools of `make test`)")
    scale, repeat, lag_scale, lag_s = (8, 1, 10, 8) if ctx.quick else (30, 2, 30, 20)
    corpus, m = throughput(ctx, scale, repeat)
    ctx.raw["wal"] = {"corpus": corpus, "cpus": THREADS, "throughput": m}
    lag = ctx.raw["wal"]["lag"] = [
        # the server's environment has no LOOMWORKS_LIB: the command sets it (and the level) for the script
        lag_under_load("archive-wal", f"env LOOMWORKS_LIB={LIB_ENV['LOOMWORKS_LIB']} WAL_GZIP_LEVEL=1 "
                       f"{ARCHIVE_WAL} %p %f %o", lag_scale, lag_s),
        lag_under_load("docs gzip one-liner", "gzip < %p > %o/%f.gz", lag_scale, lag_s)]

    def row(metric: str, ours: str, anchor: str, figure: str = "mb_per_s") -> Row:
        return Row("5 wal", metric, m[ours][figure], "MB/s" if figure == "mb_per_s" else "x",
                   m[anchor][figure], m[anchor]["method"], better="higher")

    same = "archive-wal throughput, same level and threads: forced to gzip"
    lo, ld = lag
    rows = [
        row(f"archive-wal throughput, as shipped: pigz -1, {THREADS} threads, verify + 2 fsyncs "
            f"({corpus['segments']} segments, {corpus['mb']} MB)", "shipped", "docs"),
        row(f"archive-wal throughput, as shipped (pigz -1, {THREADS} threads)", "shipped", "pgbackrest6"),
        row(f"{same} -1, 1 thread, verify + 2 fsyncs", "gzip1", "oneliner1"),
        row(f"{same} -6, 1 thread, verify + 2 fsyncs", "gzip6", "docs"),
        row(f"{same} -1, 1 thread", "gzip1", "pgbackrest1"),
        row(f"{same} -6, 1 thread", "gzip6", "pgbackrest6"),
        row("compression ratio, as shipped (level 1)", "shipped", "docs", "ratio"),
        row("compression ratio, as shipped (level 1)", "shipped", "pgbackrest6", "ratio"),
        row("compression ratio, same level: archive-wal forced to gzip -6", "gzip6", "docs", "ratio"),
        Row("5 wal", f"archiver lag under pgbench ({lo['wal_mb_per_s']} MB/s of WAL), archive-wal as shipped "
            "(pigz -1): max .ready segments", lo["max_ready"], "", ld["max_ready"], DOCS),
        Row("5 wal", "archiver lag, archive-wal as shipped: mean .ready segments", lo["mean_ready"], "",
            ld["mean_ready"], DOCS),
    ]
    if broken := [r for r in lag if r["failed_count"]]:
        raise BenchFailure("; ".join(f"archiver {r['archiver']} failed {r['failed_count']} times under load"
                                     for r in broken), rows)
    return rows
