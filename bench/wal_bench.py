#!/usr/bin/env python3
"""WAL archiving benchmark: postgres/bin/archive-wal vs PostgreSQL's documented gzip one-liner
vs pgBackRest archive-push, on the same real WAL segments, plus archiver lag under load.

    .venv/bin/python bench/wal_bench.py [--scale 20] [--repeat 2]

Runs as root (clusters and archivers run as the postgres user, like in production). Prints a
Markdown table and writes bench/results/wal.json. Nothing here is asserted: figures only.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support.pg import PG_BIN, PgCluster  # noqa: E402
from tests.support.wait import wait_for  # noqa: E402

ARCHIVE_WAL = REPO / "postgres" / "bin" / "archive-wal"
RESULTS = REPO / "bench" / "results" / "wal.json"
ENV = {**os.environ, "LOOMWORKS_LIB": str(REPO / "docker" / "lib")}
MB = 1024 * 1024
PUSH_OPTS = "--archive-mode-check=n"  # compress-type=gz in the config; pgBackRest's default level


def as_postgres(cmd: str, env: dict[str, str] | None = None, check: bool = True) -> None:
    r = subprocess.run(["runuser", "-u", "postgres", "--", "bash", "-c", cmd], env=env or ENV,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False)
    if check and r.returncode != 0:
        raise RuntimeError(f"failed ({r.returncode}): {cmd[:300]}\n{r.stderr[-2000:]}")


def pg_dir(prefix: str) -> Path:
    d = Path(tempfile.mkdtemp(prefix=f"lwbench-{prefix}-"))
    shutil.chown(d, "postgres", "postgres")
    return d


def generate_segments(scale: int, cluster: PgCluster, dest: Path) -> list[Path]:
    """Real, complete segments: a pgbench -i load archived by `cp` into ``dest``."""
    subprocess.run([str(PG_BIN / "pgbench"), "-i", "-s", str(scale), "-q"], env=cluster.env, check=True,
                   capture_output=True)
    cluster.psql("SELECT pg_switch_wal()")
    wait_for(lambda: not list((cluster.datadir / "pg_wal" / "archive_status").glob("*.ready")), 120,
             "segments copied")
    return sorted(p for p in dest.iterdir() if len(p.name) == 24)


def timed_run(label: str, segs: list[Path], command: str, out: Path, env: dict[str, str] | None = None,
              gz_glob: str = "*.gz") -> dict:
    """Run ``command`` once per segment (as postgres, with %p/%f/%o substituted); MB/s and ratio."""
    script = "\n".join(command.replace("%p", str(s)).replace("%f", s.name).replace("%o", str(out))
                       for s in segs)
    as_postgres("sync")
    t0 = time.monotonic()
    as_postgres("set -e\n" + script, env=env)
    elapsed = time.monotonic() - t0
    raw = sum(s.stat().st_size for s in segs)
    packed = sum(p.stat().st_size for p in out.rglob(gz_glob))
    return {"method": label, "seconds": round(elapsed, 3), "mb_per_s": round(raw / MB / elapsed, 1),
            "ratio": round(raw / packed, 1) if packed else None}


def pgbackrest_setup(cluster: PgCluster, root: Path) -> str:
    """A throwaway repository and stanza for ``cluster``; returns the options for each call."""
    conf = root / "pgbackrest.conf"
    conf.write_text(
        f"[global]\nrepo1-path={root}/repo\nlog-path={root}/log\nlock-path={root}/lock\n"
        f"spool-path={root}/spool\nlog-level-console=warn\nlog-level-file=off\n"
        "compress-type=gz\narchive-async=n\n\n"
        f"[bench]\npg1-path={cluster.datadir}\npg1-port={cluster.port}\npg1-socket-path={cluster.root}\n")
    shutil.chown(conf, "postgres", "postgres")
    opts = f"--config={conf} --stanza=bench"
    as_postgres(f"pgbackrest {opts} stanza-create", env={**ENV, "PGPASSWORD": cluster.password})
    return opts


def measure_methods(segs: list[Path], cluster: PgCluster, repeat: int) -> list[dict]:
    methods = [
        ("archive-wal (pigz -1, verify, fsync x2)", f"{ARCHIVE_WAL} %p %f %o", {}),
        ("archive-wal level 6", f"{ARCHIVE_WAL} %p %f %o", {"WAL_GZIP_LEVEL": "6"}),
        ("gzip -1 + fsync (single thread)", "gzip -1 < %p > %o/%f.gz && sync %o/%f.gz", {}),
        ("docs one-liner: gzip < %p > %f.gz (level 6, no fsync)", "gzip < %p > %o/%f.gz", {}),
    ]
    results: list[dict] = []
    for label, cmd, extra in methods:
        runs = []
        for _ in range(repeat):
            out = pg_dir("out")
            runs.append(timed_run(label, segs, cmd, out, env={**ENV, **extra}))
            shutil.rmtree(out)
        best = max(runs, key=lambda r: r["mb_per_s"])
        best["runs_mb_per_s"] = [r["mb_per_s"] for r in runs]
        results.append(best)
    root = pg_dir("pgbackrest")
    opts = pgbackrest_setup(cluster, root)
    runs = []
    for i in range(repeat):
        if i:
            shutil.rmtree(root)
            root = pg_dir("pgbackrest")
            opts = pgbackrest_setup(cluster, root)
        runs.append(timed_run("pgbackrest 2.45 archive-push (gz)", segs,
                              f"pgbackrest {opts} {PUSH_OPTS} archive-push %p", root / "repo",
                              env={**ENV, "PGPASSWORD": cluster.password}))
    shutil.rmtree(root)
    best = max(runs, key=lambda r: r["mb_per_s"])
    best["runs_mb_per_s"] = [r["mb_per_s"] for r in runs]
    results.append(best)
    return results


def lag_under_load(label: str, archive_command: str, scale: int, seconds: int) -> dict:
    """pgbench -i (bulk load) then pgbench TPC-B for ``seconds``; sample pg_wal/archive_status."""
    arch = pg_dir("lag")
    cluster = PgCluster(settings={"wal_level": "replica", "archive_mode": "on", "max_wal_size": "'4GB'",
                                  "archive_command": f"'{archive_command.replace('%o', str(arch))}'"}).start()
    status = cluster.datadir / "pg_wal" / "archive_status"
    samples: list[int] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            samples.append(len(list(status.glob("*.ready"))))
            stop.wait(0.25)

    t = threading.Thread(target=sample, daemon=True)
    try:
        lsn0 = cluster.psql("SELECT pg_current_wal_lsn()")
        t.start()
        t0 = time.monotonic()
        subprocess.run([str(PG_BIN / "pgbench"), "-i", "-s", str(scale), "-q"], env=cluster.env, check=True,
                       capture_output=True)
        subprocess.run([str(PG_BIN / "pgbench"), "-c", "4", "-j", "2", "-T", str(seconds), "-n"],
                       env=cluster.env, check=True, capture_output=True)
        load_s = time.monotonic() - t0
        wal_mb = int(cluster.psql(f"SELECT pg_current_wal_lsn() - '{lsn0}'::pg_lsn")) / MB
        t1 = time.monotonic()
        wait_for(lambda: not list(status.glob("*.ready")), 600, "archiver to catch up")
        catch_up = time.monotonic() - t1
        stop.set()
        t.join()
        failed = cluster.psql("SELECT failed_count FROM pg_stat_archiver")
    finally:
        stop.set()
        cluster.destroy()
        shutil.rmtree(arch, ignore_errors=True)
    return {"archiver": label, "load_seconds": round(load_s, 1), "wal_mb": round(wal_mb),
            "wal_mb_per_s": round(wal_mb / load_s, 1), "max_ready": max(samples),
            "mean_ready": round(statistics.mean(samples), 1), "catch_up_seconds": round(catch_up, 1),
            "failed_count": int(failed)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--scale", type=int, default=30, help="pgbench scale for the segment corpus")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--lag-scale", type=int, default=30)
    ap.add_argument("--lag-seconds", type=int, default=20)
    args = ap.parse_args()

    seg_dir = pg_dir("segs")
    cluster = PgCluster(settings={"wal_level": "replica", "archive_mode": "on", "max_wal_size": "'4GB'",
                                  "archive_command": f"'cp %p {seg_dir}/%f'"}).start()
    try:
        segs = generate_segments(args.scale, cluster, seg_dir)
        corpus = {"segments": len(segs), "mb": round(sum(s.stat().st_size for s in segs) / MB)}
        print(f"corpus: {corpus['segments']} real segments ({corpus['mb']} MB) "
              f"from pgbench -i -s {args.scale}", flush=True)
        methods = measure_methods(segs, cluster, args.repeat)
    finally:
        cluster.destroy()
        shutil.rmtree(seg_dir, ignore_errors=True)

    lag = [
        lag_under_load("archive-wal", f"{ARCHIVE_WAL} %p %f %o", args.lag_scale, args.lag_seconds),
        lag_under_load("docs gzip one-liner", "gzip < %p > %o/%f.gz", args.lag_scale, args.lag_seconds),
    ]

    pgbr = next(m for m in methods if m["method"].startswith("pgbackrest"))["mb_per_s"]
    print("\n### WAL archiving throughput (same segments, one process per segment, as PostgreSQL does)\n")
    print("| method | MB/s | x pgBackRest | compression ratio | runs (MB/s) |")
    print("|---|---:|---:|---:|---|")
    for m in methods:
        print(f"| {m['method']} | {m['mb_per_s']} | {m['mb_per_s'] / pgbr:.2f} | {m['ratio']}x | "
              f"{', '.join(map(str, m['runs_mb_per_s']))} |")
    print(f"\n### Archiver lag under load (pgbench -i -s {args.lag_scale}, then TPC-B 4 clients "
          f"{args.lag_seconds}s)\n")
    print("| archive_command | WAL MB | WAL MB/s written | max .ready | mean .ready | catch-up s | failed |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in lag:
        print(f"| {r['archiver']} | {r['wal_mb']} | {r['wal_mb_per_s']} | {r['max_ready']} | "
              f"{r['mean_ready']} | {r['catch_up_seconds']} | {r['failed_count']} |")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"corpus": corpus, "cpus": os.cpu_count(), "throughput": methods,
                                   "lag": lag}, indent=2) + "\n")
    print(f"\nJSON: {RESULTS.relative_to(REPO)}")


if __name__ == "__main__":
    main()
