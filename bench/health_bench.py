#!/usr/bin/env python3
"""Benchmark /web/health of loomworks_health against Odoo's own health route.

Starts a throwaway PostgreSQL 15 cluster (tests/support/pg.py), creates a
database with loomworks_health installed, then for each endpoint starts a real
odoo-bin (threaded, loopback, random port) and drives it at a fixed request
rate with an open-loop generator: request i is sent at ``t0 + i/rate`` from an
asyncio loop, whatever happened to the earlier ones. Latency is measured from
the scheduled time (so a stalled server is not hidden, as in wrk2).

Endpoints (each against its own database in the same cluster):
  loomworks_health  --load=base,web,loomworks_health  db with the addon     GET /web/health
  odoo (anchor)     --load=base,web                   db with only web      GET /web/health?db_server_status=1

Reported per endpoint: p50/p90/p99/max latency, errors, Odoo CPU per request
(/proc utime+stime of the odoo-bin process), PostgreSQL CPU per request (the
postmaster with its live and reaped backends) and the cluster's client
connection count before, during (max) and after the run. Writes a Markdown
table to stdout and JSON to bench/results/health.json.

Usage: .venv/bin/python bench/health_bench.py [--rate 200] [--duration 30]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psycopg2

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.odoo.odoo_proc import (  # noqa: E402
    DB_NAME,
    SERVER_WIDE_HEALTH,
    SERVER_WIDE_PLAIN,
    OdooProcess,
    count_backends,
    create_role,
    init_database,
    tail,
    write_config,
)
from tests.support.odoo_tree import find_odoo_tree, why_missing  # noqa: E402
from tests.support.pg import PgCluster  # noqa: E402

TARGET_P99_MS = 50.0


PLAIN_DB = "lwtest_plain"


@dataclass
class Scenario:
    name: str
    load: str
    path: str
    db: str
    modules: str


SCENARIOS = [
    Scenario("loomworks_health", SERVER_WIDE_HEALTH, "/web/health", DB_NAME, "loomworks_health"),
    # the floor: the same server answering without touching the database
    Scenario("loomworks_health liveness", SERVER_WIDE_HEALTH, "/web/health/live", DB_NAME,
             "loomworks_health"),
    # the anchor's database must not have loomworks_health installed (its post_load would hook in)
    Scenario("odoo /web/health?db_server_status=1", SERVER_WIDE_PLAIN, "/web/health?db_server_status=1",
             PLAIN_DB, "web"),
]


@dataclass
class Result:
    endpoint: str
    path: str
    server_wide: str
    rate_target: float
    duration_s: float
    requests: int
    achieved_rate: float
    status_counts: dict[str, int]
    errors: int
    latency_ms: dict[str, float]
    service_ms: dict[str, float]
    generator_lag_ms: dict[str, float]
    loadavg_1m: dict[str, float]
    odoo_cpu_ms_per_req: float
    pg_cpu_ms_per_req: float
    pg_connections: dict[str, int] = field(default_factory=dict)


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, max(0, round(q / 100 * (len(sorted_values) - 1))))
    return sorted_values[k]


def summary(values: list[float]) -> dict[str, float]:
    s = sorted(values)
    return {f"p{q:g}": round(percentile(s, q) * 1000, 2) for q in (50, 90, 99, 99.9)} | {
        "max": round((s[-1] if s else float("nan")) * 1000, 2)}


def proc_cpu(pid: int, children: bool = False) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / os.sysconf("SC_CLK_TCK")


def pg_cpu(cluster: PgCluster) -> float:
    """CPU seconds of the postmaster, its reaped backends and its live children."""
    master = int((cluster.datadir / "postmaster.pid").read_text().split()[0])
    total = proc_cpu(master, children=True)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == master:
                total += proc_cpu(int(entry.name))
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            continue
    return total


class LoadGenerator:
    """Open-loop fixed-rate HTTP GETs from one asyncio event loop.

    Odoo's werkzeug server answers every request with ``Connection: close``, so
    each request opens its own TCP connection (as a Docker HEALTHCHECK does).
    """

    def __init__(self, port: int, path: str, rate: float) -> None:
        self.port, self.path, self.rate = port, path, rate
        self.request = (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                        "Connection: close\r\n\r\n").encode()
        self.samples: list[tuple[float, float, int]] = []  # (latency, service, status or -1)

    async def _one(self, loop: asyncio.AbstractEventLoop, due: float) -> None:
        sent = loop.time()
        status = -1
        try:
            async with asyncio.timeout(30):
                reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
                try:
                    writer.write(self.request)
                    status_line = await reader.readline()
                    await reader.read()  # the server closes after the body
                finally:
                    writer.close()
            status = int(status_line.split()[1])
        except (OSError, TimeoutError, ValueError, IndexError):
            status = -1
        done = loop.time()
        self.samples.append((done - due, done - sent, status))

    async def _run(self, duration: float) -> float:
        loop = asyncio.get_running_loop()
        total = int(self.rate * duration)
        t0 = loop.time() + 0.05
        tasks = []
        for i in range(total):
            due = t0 + i / self.rate
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(self._one(loop, due)))
        await asyncio.gather(*tasks)
        return loop.time() - t0

    def run(self, duration: float) -> tuple[float, list[tuple[float, float, int]]]:
        self.samples = []
        wall = asyncio.run(self._run(duration))
        return wall, list(self.samples)


class ConnectionSampler:
    """Max of the cluster's client connections (not its own), sampled every 0.25 s during a run."""

    def __init__(self, cluster: PgCluster) -> None:
        self.conn = psycopg2.connect(cluster.dsn)
        self.conn.autocommit = True
        self.max = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with self.conn.cursor() as cur:
            while not self.stop.wait(0.25):
                cur.execute("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'"
                            " AND pid <> pg_backend_pid()")
                self.max = max(self.max, cur.fetchone()[0])

    def __enter__(self) -> ConnectionSampler:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()
        self.conn.close()


def bench_scenario(scenario: Scenario, cluster: PgCluster, tree: Path, data_dir: Path, work: Path,
                   rate: float, duration: float, warmup: float) -> Result:
    slug = scenario.name.replace(" ", "_").replace("/", "").replace("?", "_")
    conf = write_config(work / f"{slug}.conf", cluster, tree, data_dir, log_level="warn")
    server = OdooProcess(tree, conf, [f"--load={scenario.load}", "-d", scenario.db], log=work / f"{slug}.log")
    server.start()
    try:
        server.wait_http(scenario.path, 200, timeout=300)
        generator = LoadGenerator(server.port, scenario.path, rate)
        generator.run(warmup)  # connections, threads and caches warm
        conns_before = count_backends(cluster)
        load0 = os.getloadavg()[0]
        cpu0, pg0 = server.cpu_seconds(), pg_cpu(cluster)
        with ConnectionSampler(cluster) as sampler:
            wall, samples = generator.run(duration)
        cpu1, pg1 = server.cpu_seconds(), pg_cpu(cluster)
        load1 = os.getloadavg()[0]
        conns_after = count_backends(cluster)
    finally:
        server.stop()
    statuses: dict[str, int] = {}
    for _, _, status in samples:
        statuses[str(status)] = statuses.get(str(status), 0) + 1
    n = len(samples)
    return Result(
        endpoint=scenario.name,
        path=scenario.path,
        server_wide=scenario.load,
        rate_target=rate,
        duration_s=round(wall, 2),
        requests=n,
        achieved_rate=round(n / wall, 1),
        status_counts=statuses,
        errors=n - statuses.get("200", 0),
        latency_ms=summary([s[0] for s in samples]),
        service_ms=summary([s[1] for s in samples]),
        generator_lag_ms=summary([s[0] - s[1] for s in samples]),
        loadavg_1m={"before": round(load0, 2), "after": round(load1, 2)},
        odoo_cpu_ms_per_req=round((cpu1 - cpu0) * 1000 / max(n, 1), 3),
        pg_cpu_ms_per_req=round((pg1 - pg0) * 1000 / max(n, 1), 3),
        pg_connections={"before": conns_before, "max_during": sampler.max, "after": conns_after},
    )


def markdown(results: list[Result]) -> str:
    head = ("| endpoint | requests | rate/s | p50 ms | p90 ms | p99 ms | max ms | non-200 | "
            "Odoo CPU ms/req | PG CPU ms/req | PG conns before / max / after | load avg |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in results:
        c = r.pg_connections
        lines.append(
            f"| {r.endpoint} | {r.requests} | {r.achieved_rate} | {r.latency_ms['p50']} | "
            f"{r.latency_ms['p90']} | {r.latency_ms['p99']} | {r.latency_ms['max']} | {r.errors} | "
            f"{r.odoo_cpu_ms_per_req} | {r.pg_cpu_ms_per_req} | "
            f"{c['before']} / {c['max_during']} / {c['after']} | "
            f"{r.loadavg_1m['before']} -> {r.loadavg_1m['after']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=200.0, help="requests per second (default 200)")
    parser.add_argument("--duration", type=float, default=30.0, help="measured seconds (default 30)")
    parser.add_argument("--warmup", type=float, default=3.0, help="unmeasured seconds first (default 3)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "health.json")
    args = parser.parse_args(argv)
    if args.rate <= 0 or args.duration <= 0 or args.warmup < 0:
        parser.error("--rate and --duration must be positive, --warmup not negative")
    tree = find_odoo_tree()
    if tree is None:
        print(f"health_bench: {why_missing()}", file=sys.stderr)
        return 2

    work = Path(tempfile.mkdtemp(prefix="lwbench-health-"))
    data_dir = work / "data"
    data_dir.mkdir()
    cluster = PgCluster().start()
    results: list[Result] = []
    try:
        create_role(cluster)
        conf = write_config(work / "init.conf", cluster, tree, data_dir, log_level="warn")
        for db, modules in dict.fromkeys((s.db, s.modules) for s in SCENARIOS):
            print(f"creating {db} with {modules} (odoo-bin -i) ...", file=sys.stderr)
            init_database(tree, conf, db, modules, work / "init.log")
        for scenario in SCENARIOS:
            print(f"{scenario.name}: {args.rate:g} req/s for {args.duration:g} s ...", file=sys.stderr)
            try:
                results.append(bench_scenario(scenario, cluster, tree, data_dir, work,
                                              args.rate, args.duration, args.warmup))
            except Exception:
                for log in work.glob("*.log"):
                    print(f"--- {log.name}\n{tail(log)}", file=sys.stderr)
                raise
    except BaseException:
        print(f"health_bench: logs kept in {work}", file=sys.stderr)
        raise
    else:
        shutil.rmtree(work, ignore_errors=True)
    finally:
        cluster.destroy()

    ours = results[0]
    flat = ours.pg_connections["after"] <= ours.pg_connections["before"] + 2
    verdict = {
        "p99_under_target": ours.latency_ms["p99"] < TARGET_P99_MS,
        "connections_flat": flat,
        "no_errors": ours.errors == 0,
    }
    report = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "kernel": platform.release()},
        "target_p99_ms": TARGET_P99_MS,
        "verdict": verdict,
        "results": [asdict(r) for r in results],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(markdown(results))
    print(f"\nloomworks_health: p99 {ours.latency_ms['p99']} ms (target < {TARGET_P99_MS:g}), "
          f"connections {ours.pg_connections['before']} -> {ours.pg_connections['after']} "
          f"(max {ours.pg_connections['max_during']}), verdict {verdict}")
    print(f"JSON: {args.out}")
    return 0 if all(verdict.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
