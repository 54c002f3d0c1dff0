"""Section `health`: /web/health of loomworks_health against Odoo's own health route, each on a real
odoo-bin driven at a fixed rate by an open-loop generator (latency counts from the scheduled send
time, as in wrk2: a stalled server is not hidden). Fails on a failed request or PostgreSQL
connections that grow; bench/README.md says what is measured."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import psycopg2

from bench import Context, sampling, say
from bench.report import BenchFailure, Row
from tests.support.odoo import DB_NAME, SERVER_WIDE_HEALTH, SERVER_WIDE_PLAIN, Odoo, count_backends
from tests.support.pg import PgCluster

TARGET_P99_MS = 50.0  # the addon's target: a figure in health.json, not a failure
PLAIN_DB = "lwtest_plain"
ANCHOR = "Odoo's /web/health?db_server_status=1, same server"
# name, server-wide modules, path, database, modules installed in it
SCENARIOS = [
    ("loomworks_health", SERVER_WIDE_HEALTH, "/web/health", DB_NAME, "loomworks_health"),
    # the floor: the same server answering without touching the database
    ("loomworks_health liveness", SERVER_WIDE_HEALTH, "/web/health/live", DB_NAME, "loomworks_health"),
    ("odoo /web/health?db_server_status=1", SERVER_WIDE_PLAIN, "/web/health?db_server_status=1", PLAIN_DB,
     "web"),
]


def percentiles_ms(values: list[float]) -> dict[str, float]:
    """p50/p90/p99/p99.9 and max of ``values`` (seconds), in ms (nearest rank)."""
    s = sorted(values)
    if not s:
        return {k: float("nan") for k in ("p50", "p90", "p99", "p99.9", "max")}

    def at(q: float) -> float:
        return round(s[min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))] * 1000, 2)

    return {f"p{q:g}": at(q) for q in (50, 90, 99, 99.9)} | {"max": round(s[-1] * 1000, 2)}


def proc_cpu(pid: int, children: bool = False) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12]) + (int(fields[13]) + int(fields[14]) if children else 0)
    return ticks / os.sysconf("SC_CLK_TCK")


def pg_cpu(cluster: PgCluster) -> float:
    """CPU seconds of the postmaster, its reaped backends and its live children."""
    master = int((cluster.datadir / "postmaster.pid").read_text().split()[0])
    total = proc_cpu(master, children=True)
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == master:
                total += proc_cpu(int(entry.name))
        except (OSError, IndexError, ValueError):
            continue
    return total


Sample = tuple[float, float, int]  # latency from the scheduled time, service time, status or -1


def open_loop(port: int, path: str, rate: float, duration: float) -> tuple[float, list[Sample]]:
    """GET ``path`` at ``rate``/s for ``duration`` s from one event loop, a new connection per
    request (Odoo answers with Connection: close, as a Docker HEALTHCHECK sees it). Wall seconds
    and one Sample per request."""
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode()
    samples: list[Sample] = []

    async def one(loop: asyncio.AbstractEventLoop, due: float) -> None:
        sent, status = loop.time(), -1
        try:
            async with asyncio.timeout(30):
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                try:
                    writer.write(request)
                    status = int((await reader.readline()).split()[1])
                    await reader.read()  # the server closes after the body
                finally:
                    writer.close()
        except (OSError, TimeoutError, ValueError, IndexError):
            status = -1
        done = loop.time()
        samples.append((done - due, done - sent, status))

    async def main() -> float:
        loop = asyncio.get_running_loop()
        t0 = loop.time() + 0.05
        tasks = []
        for i in range(int(rate * duration)):
            due = t0 + i / rate
            await asyncio.sleep(max(0.0, due - loop.time()))
            tasks.append(asyncio.create_task(one(loop, due)))
        await asyncio.gather(*tasks)
        return loop.time() - t0

    return asyncio.run(main()), samples


@contextlib.contextmanager
def max_connections(cluster: PgCluster) -> Iterator[list[int]]:
    """[the max of the cluster's client connections (not its own)], sampled every 0.25 s in the block."""
    peak = [0]
    with contextlib.closing(psycopg2.connect(cluster.dsn)) as conn, conn.cursor() as cur:
        conn.autocommit = True

        def count() -> None:
            cur.execute("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'"
                        " AND pid <> pg_backend_pid()")
            peak[0] = max(peak[0], cur.fetchone()[0])

        with sampling(count):
            yield peak


def measure(ctx: Context, cluster: PgCluster, data_dir: Path, scenario: tuple, rate: float,
            duration: float, warmup: float) -> dict:
    name, load, path, db, _ = scenario
    server = Odoo(ctx.tree, cluster, {"log_level": "warn"}, data_dir=data_dir)
    try:
        server.start(f"--load={load}", "-d", db).wait_http(path, 200, timeout=300)
        open_loop(server.port, path, rate, warmup)  # connections, threads and caches warm
        before, load0 = count_backends(cluster), os.getloadavg()[0]
        cpu0, pg0 = server.cpu_seconds(), pg_cpu(cluster)
        with max_connections(cluster) as peak:
            wall, samples = open_loop(server.port, path, rate, duration)
        cpu1, pg1 = server.cpu_seconds(), pg_cpu(cluster)
        after, load1 = count_backends(cluster), os.getloadavg()[0]
    finally:
        server.destroy()
    statuses = dict(Counter(str(s[2]) for s in samples))
    n = len(samples)
    return {
        "endpoint": name, "path": path, "server_wide": load, "rate_target": rate,
        "duration_s": round(wall, 2), "requests": n, "achieved_rate": round(n / wall, 1),
        "status_counts": statuses, "errors": n - statuses.get("200", 0),
        "latency_ms": percentiles_ms([s[0] for s in samples]),
        "service_ms": percentiles_ms([s[1] for s in samples]),
        "generator_lag_ms": percentiles_ms([s[0] - s[1] for s in samples]),
        "loadavg_1m": {"before": round(load0, 2), "after": round(load1, 2)},
        "odoo_cpu_ms_per_req": round((cpu1 - cpu0) * 1000 / max(n, 1), 3),
        "pg_cpu_ms_per_req": round((pg1 - pg0) * 1000 / max(n, 1), 3),
        "pg_connections": {"before": before, "max_during": peak[0], "after": after},
    }


def run(ctx: Context) -> list[Row]:
    rate, duration, warmup = 200.0, (8.0 if ctx.quick else 30.0), (2.0 if ctx.quick else 3.0)
    raw = ctx.raw["health"] = {"target_p99_ms": TARGET_P99_MS, "results": []}
    cluster = PgCluster().start()
    data_dir = ctx.tmp / "health-data"
    try:
        init = Odoo(ctx.tree, cluster, {"log_level": "warn"}, data_dir=data_dir)
        for db, modules in dict.fromkeys((s[3], s[4]) for s in SCENARIOS):
            say(f"health: creating {db} with {modules} (odoo-bin -i)")
            init.init_db(db, modules)
        init.destroy()
        for scenario in SCENARIOS:
            say(f"health: {scenario[0]} {scenario[2]}: {rate:g} req/s for {duration:g} s")
            r = measure(ctx, cluster, data_dir, scenario, rate, duration, warmup)
            say(f"  p50 {r['latency_ms']['p50']} ms, p99 {r['latency_ms']['p99']} ms, errors {r['errors']}, "
                f"Odoo CPU {r['odoo_cpu_ms_per_req']} ms/req, PG CPU {r['pg_cpu_ms_per_req']} ms/req, "
                f"PG connections {r['pg_connections']}")
            raw["results"].append(r)
    finally:
        cluster.destroy()
    ours, _, odoo = raw["results"]
    raw["p99_under_target"] = ours["latency_ms"]["p99"] < TARGET_P99_MS
    at = f"{rate:g} req/s for {duration:g} s"
    pc, oc = ours["pg_connections"], odoo["pg_connections"]
    rows = [
        Row("3 health", f"/web/health p50 latency ({at})", ours["latency_ms"]["p50"], "ms",
            odoo["latency_ms"]["p50"], ANCHOR),
        Row("3 health", f"/web/health p99 latency ({at})", ours["latency_ms"]["p99"], "ms",
            odoo["latency_ms"]["p99"], ANCHOR),
        *(Row("3 health", label, ours[key], "ms", odoo[key], ANCHOR)
          for label, key in (("Odoo CPU per request", "odoo_cpu_ms_per_req"),
                             ("PostgreSQL CPU per request", "pg_cpu_ms_per_req"))),
        Row("3 health", "PostgreSQL connections before → after (max during)",
            f"{pc['before']} → {pc['after']} ({pc['max_during']})",
            anchor=f"{oc['before']} → {oc['after']} ({oc['max_during']})", anchor_name=ANCHOR),
    ]
    if ours["errors"]:
        raise BenchFailure(f"/web/health had failed requests: {ours['status_counts']}", rows)
    if pc["after"] > pc["before"]:
        raise BenchFailure(f"PostgreSQL connections grew under /web/health: {pc}", rows)
    return rows
