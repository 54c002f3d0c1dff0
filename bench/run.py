#!/usr/bin/env python3
"""`make bench`: every Loomworks benchmark beside its anchor, one Markdown table.

Sections (run in this order; `--only a,b` selects):
  image     bench/image_bench.py: size of loomworks/erp (anchor: odoo:18's published 1.99 GB),
            cold build, rebuild after a one-line addon change, start to healthy on empty
            volumes and on an existing database; sizes of the other images of the stack
  start     bench/stack_bench.py's measure(): `docker compose up` to all healthy (empty
            volumes, restart); migration check on an unchanged restart vs. Odoo's `-u all`
            on the same database (what Bitnami's image runs on every start), measured here
  health    bench/health_bench.py: /web/health p50/p99 and CPU per request vs. Odoo's
            /web/health?db_server_status=1 at a fixed rate; PostgreSQL connections
  proxy     bench/proxy_bench.py: nginx over TLS vs. direct to Odoo (page, static asset),
            TLS handshakes/s
  wal       bench/wal_bench.py: archive-wal vs. the documented gzip one-liner vs. pgBackRest
            archive-push; archiver lag under pgbench; compression ratio
  shutdown  measured here: `docker stop` of loomworks/erp idle and with a 10 s request in flight
            (it must complete) vs. the same image running Odoo's default threaded server
            (WORKERS=0, what odoo:18 runs)

Writes bench/results/summary.md and summary.json (plus each bench's own JSON and a log per
section in bench/results/logs/). Exits 1 when a correctness condition broke (a request
failed, connections grew, an in-flight request was lost, a sub-bench failed).

  .venv/bin/python bench/run.py [--quick] [--only image,start,health,proxy,wal,shutdown]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(BENCH))

from common import BenchFailure, Row, facts_line, machine_facts, markdown_table, median  # noqa: E402

from tests.support.images import build, ensure_base_image, prepare_odoo_context  # noqa: E402
from tests.support.odoo_tree import find_odoo_tree, why_missing  # noqa: E402

RESULTS = BENCH / "results"
LOGS = RESULTS / "logs"
SECTIONS = ("image", "start", "health", "proxy", "wal", "shutdown")
ERP = "loomworks/erp:test"
OTHER_IMAGES = ("loomworks/erp-dev:test", "loomworks/postgres:test", "loomworks/nginx:test",
                "loomworks/redis:test")
SLOW_ADDON = REPO / "tests" / "docker" / "addons" / "lwtest_slow"
HEALTH_FLAGS = ["--health-interval=1s", "--health-timeout=3s", "--health-retries=3"]


def say(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# --- sub-benches --------------------------------------------------------------------------


def run_script(name: str, args: list[str], ok_codes: tuple[int, ...] = (0,)) -> int:
    """Run bench/<name> with the same interpreter; output to results/logs/<name>.log."""
    LOGS.mkdir(parents=True, exist_ok=True)
    log = LOGS / f"{Path(name).stem}.log"
    cmd = [sys.executable, str(BENCH / name), *args]
    say(f"{name} {' '.join(args)} (log: {log.relative_to(REPO)})")
    with log.open("w") as fh:
        rc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, cwd=REPO, check=False).returncode
    if rc not in ok_codes:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-25:])
        raise BenchFailure(f"{name} exited {rc}; last lines of {log}:\n{tail}")
    return rc


def load_json(name: str) -> dict[str, Any]:
    path = RESULTS / name
    if not path.exists():
        raise BenchFailure(f"{path} was not written")
    return json.loads(path.read_text())


def fresh(name: str) -> None:
    (RESULTS / name).unlink(missing_ok=True)  # never report a previous run's figures


def image_size_gb(tag: str) -> float:
    out = subprocess.run(["docker", "image", "inspect", "-f", "{{.Size}}", tag], capture_output=True,
                         text=True, check=True).stdout
    return int(out) / 1e9


def section_image(quick: bool, raw: dict[str, Any]) -> list[Row]:
    fresh("image.json")
    args = ["--runs", "1" if quick else "3"] + (["--skip-cold"] if quick else [])
    run_script("image_bench.py", args)
    img = raw["image"] = load_json("image.json")
    cold = img.get("cold_build_s")
    rows = [
        Row("1 image", "loomworks/erp final size", img["size_bytes"] / 1e9, "GB", 1.99,
            "odoo:18 (Docker Hub)", published=True),
        Row("1 image", "cold build (--no-cache; pip cache mount kept)",
            cold if cold is not None else "skipped (--quick)", "s" if cold is not None else ""),
        Row("1 image", "rebuild after a one-line addon change", img["addon_rebuild_s"], "s", cold,
            "cold build, same run" if cold is not None else "",
            note=f"{len(img['addon_rebuild_steps_run'])} build steps ran"),
    ]
    say("building the other images (cached) for their sizes")
    sizes = raw.setdefault("image_sizes_gb", {})
    for tag in OTHER_IMAGES:
        build(tag)
        sizes[tag] = image_size_gb(tag)
        rows.append(Row("1 image", f"{tag.split(':')[0]} size", sizes[tag] * 1000, "MB"))
    starts = [s["docker_healthy_s"] for s in img["existing_db_starts"] if "docker_healthy_s" in s]
    first = img["first_start_init"].get("docker_healthy_s")
    if first is None or len(starts) != len(img["existing_db_starts"]):
        raise BenchFailure(f"an ERP container never became healthy: {img['first_start_init']}, "
                           f"{img['existing_db_starts']}")
    rows += [
        Row("2 start", "loomworks/erp start to healthy, empty database (create + init)", first, "s"),
        Row("2 start", "loomworks/erp start to healthy, existing database", median(starts), "s",
            note=f"median of {len(starts)}"),
    ]
    return rows


# --- an ERP image on a private network with a throwaway PostgreSQL ------------------------


class ErpLab:
    """A lwtest/pg15 container (Debian's PostgreSQL 15, as in tests/docker) and ERP containers
    on a private network; one database `bench` initialised by the image itself, with the
    tests' lwtest_slow addon (GET /lwtest/sleep?seconds=N) mounted."""

    def __init__(self) -> None:
        self.id = secrets.token_hex(4)
        self.net = f"lwbench-net-{self.id}"
        self.pg = f"lwbench-pg-{self.id}"
        self.containers: list[str] = []
        self.tmp = Path(tempfile.mkdtemp(prefix="lwbench-lab-"))
        self.addon = self.tmp / "lwtest_slow"
        self.env = {**os.environ, "DB_PASSWORD": secrets.token_urlsafe(12),
                    "ADMIN_PASSWORD": secrets.token_urlsafe(12)}

    def sh(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        r = subprocess.run(args, capture_output=True, text=True, env=self.env, check=False)
        if check and r.returncode != 0:
            raise BenchFailure(f"{' '.join(args[:4])}... failed: {r.stderr.strip()[-1500:]}")
        return r

    def start(self) -> None:
        build(ERP)
        pg_image = build("lwtest/pg15:test", dockerfile="tests/docker/pg/Dockerfile",
                         context=REPO / "tests/docker/pg")
        shutil.copytree(SLOW_ADDON, self.addon)
        for p in [self.tmp, self.addon, *self.addon.rglob("*")]:
            p.chmod(0o755 if p.is_dir() else 0o644)
        self.sh("docker", "network", "create", self.net)
        self.sh("docker", "run", "-d", "--name", self.pg, "--network", self.net, "-e", "APP_USER=odoo",
                "-e", "APP_PASSWORD=" + self.env["DB_PASSWORD"], pg_image)
        self.containers.append(self.pg)
        self.poll(lambda: self.sh("docker", "exec", "-u", "postgres", self.pg, "pg_isready", "-q", "-h",
                                  "/tmp", check=False).returncode == 0, 60, "postgres container ready")

    @staticmethod
    def poll(check: Callable[[], bool], timeout: float, what: str, interval: float = 0.2) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                raise BenchFailure(f"timed out after {timeout:g} s waiting for {what}")
            time.sleep(interval)

    def erp_args(self, env: dict[str, str]) -> list[str]:
        args = ["--network", self.net, "-v", f"{self.addon}:/opt/loomworks/addons/lwtest_slow:ro",
                "-e", f"DB_HOST={self.pg}", "-e", "DB_USER=odoo", "-e", "DB_PASSWORD", "-e", "ADMIN_PASSWORD",
                "-e", "DB_NAME=bench"]
        for k, v in env.items():
            args += ["-e", f"{k}={v}"]
        return args

    def run_erp(self, env: dict[str, str] | None = None) -> tuple[str, int]:
        name = f"lwbench-erp-{secrets.token_hex(4)}"
        self.sh("docker", "run", "-d", "--name", name, "-p", "127.0.0.1::8069", *HEALTH_FLAGS,
                *self.erp_args(env or {}), ERP)
        self.containers.append(name)
        port = int(self.sh("docker", "port", name, "8069/tcp").stdout.splitlines()[0].rsplit(":", 1)[1])
        return name, port

    def logs(self, name: str) -> str:
        r = self.sh("docker", "logs", name, check=False)
        return r.stdout + r.stderr

    def wait_healthy(self, name: str, timeout: float = 600) -> float:
        t0 = time.monotonic()

        def healthy() -> bool:
            fmt = "{{.State.Status}} {{.State.Health.Status}}"
            state = self.sh("docker", "inspect", "-f", fmt, name).stdout
            if state.startswith("exited"):
                raise BenchFailure(f"{name} exited while starting:\n{self.logs(name)[-3000:]}")
            return state.strip().endswith(" healthy")

        self.poll(healthy, timeout, f"{name} healthy")
        return time.monotonic() - t0

    def remove(self, name: str) -> None:
        self.sh("docker", "rm", "-f", "-v", name, check=False)

    def init_db(self) -> None:
        say("lab: initialising database `bench` with the image (DB_NAME, lwtest_slow mounted)")
        name, _ = self.run_erp()
        self.wait_healthy(name)
        self.sh("docker", "stop", "-t", "45", name)
        self.remove(name)

    def one_shot(self, env: dict[str, str], *odoo_args: str) -> tuple[float, str]:
        """`docker run` to exit (entrypoint + Odoo with --stop-after-init); seconds and log."""
        name = f"lwbench-once-{secrets.token_hex(4)}"
        self.containers.append(name)
        t0 = time.monotonic()
        r = self.sh("docker", "run", "--name", name, *self.erp_args(env), ERP, "odoo", *odoo_args,
                    check=False)
        took = time.monotonic() - t0
        out = self.logs(name)
        self.remove(name)
        if r.returncode != 0:
            raise BenchFailure(f"`odoo {' '.join(odoo_args)}` exited {r.returncode}:\n{out[-3000:]}")
        return took, out

    def destroy(self) -> None:
        for c in self.containers:
            self.remove(c)
        self.sh("docker", "network", "rm", self.net, check=False)
        shutil.rmtree(self.tmp, ignore_errors=True)


def migration_rows(lab: ErpLab, runs: int, raw: dict[str, Any]) -> list[Row]:
    """Entrypoint to Odoo's registry loaded and exit, on the unchanged database `bench`."""
    once = ("-d", "bench", "--stop-after-init", "--no-http")
    base_env = {"WORKERS": "0", "LOG_LEVEL": "info"}
    lab.one_shot({**base_env, "AUTO_MIGRATE": "false"}, *once)  # warm-up (page cache, PostgreSQL)
    res: dict[str, list[float]] = {"check": [], "plain": [], "update_all": []}
    for i in range(runs):
        say(f"migration run {i + 1}/{runs}: checksum check, no check, -u all")
        took, out = lab.one_shot({**base_env, "AUTO_MIGRATE": "true"}, *once)
        if "migration: up to date (bench)" not in out:
            raise BenchFailure(f"unchanged restart did not report 'migration: up to date':\n{out[-3000:]}")
        res["check"].append(took)
        res["plain"].append(lab.one_shot({**base_env, "AUTO_MIGRATE": "false"}, *once)[0])
        res["update_all"].append(lab.one_shot({**base_env, "AUTO_MIGRATE": "false"}, "-u", "all", *once)[0])
    raw["migration_s"] = res
    check, plain, upd = (median(res[k]) for k in ("check", "plain", "update_all"))
    return [
        Row("2 start", "unchanged restart with migration check: container run to registry loaded, exit",
            check, "s", upd, "Odoo `-u all` on the same database, same image", note=f"median of {runs}"),
        Row("2 start", "the check's own cost (above minus the same run without any check)",
            max(check - plain, 0.0), "s", max(upd - plain, 0.0), "`-u all` minus the same run"),
    ]


def section_start(quick: bool, raw: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    for tag in (ERP, "loomworks/postgres:test", "loomworks/nginx:test", "loomworks/redis:test"):
        build(tag)
    spec = importlib.util.spec_from_file_location("stack_bench", BENCH / "stack_bench.py")
    assert spec and spec.loader
    stack_bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(stack_bench)
    import docker
    from tests.stack.compose import EventRecorder, Stack

    say("stack: docker compose up on empty volumes, then down + up (volumes kept)")
    st = Stack(tag="test")
    rec = EventRecorder(docker.from_env(), st.project)
    try:
        fresh_run = stack_bench.measure(st, rec)
        st.down()
        restart = stack_bench.measure(st, rec)
    finally:
        rec.stop()
        st.destroy()
    raw["stack"] = {"fresh": fresh_run, "restart": restart}
    rows += [
        Row("2 start", "whole stack `docker compose up` to all 4 healthy, empty volumes",
            fresh_run["all"], "s",
            note=f"odoo healthy at {fresh_run['odoo']:.1f} s"),
        Row("2 start", "whole stack restart (down, up; volumes kept) to all healthy", restart["all"], "s",
            note=f"odoo healthy at {restart['odoo']:.1f} s"),
    ]
    lab = ErpLab()
    try:
        lab.start()
        lab.init_db()
        rows += migration_rows(lab, 1 if quick else 3, raw)
    finally:
        lab.destroy()
    return rows


def section_health(quick: bool, raw: dict[str, Any]) -> list[Row]:
    fresh("health.json")
    duration, rate = ("8", "200") if quick else ("30", "200")
    # exit 1 also means "p99 above the addon's 50 ms target": a figure, not a broken condition
    run_script("health_bench.py", ["--rate", rate, "--duration", duration, "--warmup", "2" if quick else "3",
                                   "--out", str(RESULTS / "health.json")], ok_codes=(0, 1))
    h = raw["health"] = load_json("health.json")
    by = {r["endpoint"]: r for r in h["results"]}
    ours = by["loomworks_health"]
    odoo = next(r for name, r in by.items() if name.startswith("odoo "))
    if not h["verdict"]["no_errors"] or ours["errors"]:
        raise BenchFailure(f"/web/health had failed requests: {ours['status_counts']}")
    pc = ours["pg_connections"]
    if pc["after"] > pc["before"]:
        raise BenchFailure(f"PostgreSQL connections grew under /web/health: {pc}")
    anchor = "Odoo's /web/health?db_server_status=1, same server"
    at = f"{rate} req/s for {duration} s"
    oc = odoo["pg_connections"]
    return [
        Row("3 health", f"/web/health p50 latency ({at})", ours["latency_ms"]["p50"], "ms",
            odoo["latency_ms"]["p50"], anchor),
        Row("3 health", f"/web/health p99 latency ({at})", ours["latency_ms"]["p99"], "ms",
            odoo["latency_ms"]["p99"], anchor),
        Row("3 health", "Odoo CPU per request", ours["odoo_cpu_ms_per_req"], "ms",
            odoo["odoo_cpu_ms_per_req"], anchor),
        Row("3 health", "PostgreSQL CPU per request", ours["pg_cpu_ms_per_req"], "ms",
            odoo["pg_cpu_ms_per_req"], anchor),
        Row("3 health", "PostgreSQL connections before → after (max during)",
            f"{pc['before']} → {pc['after']} ({pc['max_during']})", anchor=f"{oc['before']} → {oc['after']} "
            f"({oc['max_during']})", anchor_name=anchor),
    ]


SOCKET_ERR = re.compile(r"(connect|read|write) (\d+)")


def section_proxy(quick: bool, raw: dict[str, Any]) -> list[Row]:
    fresh("proxy.json")
    duration = "3" if quick else "10"
    run_script("proxy_bench.py", ["--duration", duration])
    p = raw["proxy"] = load_json("proxy.json")
    res = p["results"]
    for name, r in res.items():
        errs = {k: int(v) for k, v in SOCKET_ERR.findall(r.get("socket_errors") or "") if int(v)}
        if r.get("non_2xx_3xx") or errs:
            raise BenchFailure(f"proxy {name}: failed requests: non-2xx {r.get('non_2xx_3xx')}, "
                               f"socket {errs}")
    direct = "direct to Odoo (no proxy), same run"
    rows = []
    for key, label in (("small_page", f"small page {p['paths']['small_page']}"),
                       ("static_asset", f"static asset {p['paths']['static_asset']}")):
        ng, di = res[f"{key}_nginx_tls"], res[f"{key}_direct"]
        rows += [
            Row("4 proxy", f"{label} through nginx TLS: req/s", ng["rps"], "req/s", di["rps"], direct,
                better="higher"),
            Row("4 proxy", f"{label} through nginx TLS: p99", ng["p99_ms"], "ms", di["p99_ms"], direct),
        ]
    rows += [
        Row("4 proxy", "TLS handshakes/s (new connection per request)", res["handshake_tls"]["rps"], "/s",
            res["handshake_plain"]["rps"], "new plain-HTTP connections/s, same nginx", better="higher"),
        Row("4 proxy", "edge's own cost: minimal upstream through nginx TLS, req/s",
            res["fast_upstream_nginx_tls"]["rps"], "req/s", res["fast_upstream_direct"]["rps"],
            "the minimal upstream direct", better="higher"),
    ]
    return rows


def section_wal(quick: bool, raw: dict[str, Any]) -> list[Row]:
    fresh("wal.json")
    args = (["--scale", "8", "--repeat", "1", "--lag-scale", "10", "--lag-seconds", "8"] if quick
            else ["--scale", "30", "--repeat", "2", "--lag-scale", "30", "--lag-seconds", "20"])
    run_script("wal_bench.py", args)
    w = raw["wal"] = load_json("wal.json")
    m = {t["method"]: t for t in w["throughput"]}
    ours = next(v for k, v in m.items() if k.startswith("archive-wal ("))
    docs = next(v for k, v in m.items() if k.startswith("docs one-liner"))
    pgbr = next(v for k, v in m.items() if k.startswith("pgbackrest"))
    lag = {r["archiver"]: r for r in w["lag"]}
    for r in w["lag"]:
        if r["failed_count"]:
            raise BenchFailure(f"archiver {r['archiver']} failed {r['failed_count']} times under load")
    lo, ld = lag["archive-wal"], next(v for k, v in lag.items() if k != "archive-wal")
    corpus = f"{w['corpus']['segments']} segments, {w['corpus']['mb']} MB"
    return [
        Row("5 wal", f"archive-wal throughput ({corpus})", ours["mb_per_s"], "MB/s", docs["mb_per_s"],
            "docs one-liner `gzip < %p > %f.gz`", better="higher"),
        Row("5 wal", "archive-wal throughput", ours["mb_per_s"], "MB/s", pgbr["mb_per_s"],
            "pgBackRest archive-push (gz)", better="higher"),
        Row("5 wal", "compression ratio", ours["ratio"], "x", docs["ratio"], "docs one-liner (gzip -6)",
            better="higher"),
        Row("5 wal", "compression ratio", ours["ratio"], "x", pgbr["ratio"], "pgBackRest archive-push (gz)",
            better="higher"),
        Row("5 wal", f"archiver lag under pgbench ({lo['wal_mb_per_s']} MB/s of WAL): max .ready segments",
            lo["max_ready"], "", ld["max_ready"], "docs one-liner"),
        Row("5 wal", "archiver lag: mean .ready segments", lo["mean_ready"], "", ld["mean_ready"],
            "docs one-liner"),
    ]


def stop_run(lab: ErpLab, env: dict[str, str], inflight: bool) -> dict[str, Any]:
    name, port = lab.run_erp({"GRACEFUL_TIMEOUT": "30", "AUTO_MIGRATE": "false", **env})
    lab.wait_healthy(name)
    for _ in range(3):  # warm the route (and the workers)
        requests.get(f"http://127.0.0.1:{port}/lwtest/sleep?seconds=0", timeout=30)
    result: dict[str, Any] = {}
    t = None
    if inflight:
        def slow() -> None:
            try:
                r = requests.get(f"http://127.0.0.1:{port}/lwtest/sleep?seconds=10", timeout=60)
                result.update(status=r.status_code, body=r.text, at=time.monotonic())
            except requests.RequestException as exc:
                result.update(error=type(exc).__name__)

        t = threading.Thread(target=slow, daemon=True)
        started = lab.logs(name).count("lwtest: request started")
        t.start()
        lab.poll(lambda: lab.logs(name).count("lwtest: request started") > started, 30,
                 "slow request started")
    t0 = time.monotonic()
    lab.sh("docker", "stop", "-t", "45", name)
    stopped = time.monotonic()
    took = stopped - t0
    exit_code = int(lab.sh("docker", "inspect", "-f", "{{.State.ExitCode}}", name).stdout.strip())
    if t is not None:
        t.join(60)
    lab.remove(name)
    out = {"stop_s": took, "exit_code": exit_code}
    if inflight:
        out["completed"] = result.get("status") == 200 and result.get("body") == "slept 10" \
            and result["at"] <= stopped + 0.5
        out["request"] = {k: v for k, v in result.items() if k != "at"}
    return out


def section_shutdown(quick: bool, raw: dict[str, Any]) -> list[Row]:
    runs = 1 if quick else 3
    lab = ErpLab()
    res: dict[str, list[dict[str, Any]]] = {}
    try:
        lab.start()
        lab.init_db()
        for who, env in (("project", {}), ("anchor", {"WORKERS": "0"})):
            for inflight in (False, True):
                key = f"{who}_{'inflight' if inflight else 'idle'}"
                for i in range(runs):
                    say(f"shutdown {key} {i + 1}/{runs}")
                    res.setdefault(key, []).append(stop_run(lab, env, inflight))
    finally:
        lab.destroy()
    raw["shutdown"] = res
    lost = [r for r in res["project_inflight"] if not r["completed"]]
    if lost:
        raise BenchFailure(f"loomworks/erp lost an in-flight request on docker stop: {lost}")
    bad_exit = [r for k in ("project_idle", "project_inflight") for r in res[k] if r["exit_code"] != 0]
    if bad_exit:
        raise BenchFailure(f"loomworks/erp exited non-zero on docker stop: {bad_exit}")

    def med(key: str) -> float:
        return median([r["stop_s"] for r in res[key]])

    def done(key: str) -> str:
        return f"{sum(r['completed'] for r in res[key])}/{len(res[key])} completed"

    anchor = "same image, WORKERS=0 (Odoo's threaded server, odoo:18's default)"
    return [
        Row("6 shutdown", "`docker stop` idle", med("project_idle"), "s", med("anchor_idle"), anchor,
            note=f"median of {runs}"),
        Row("6 shutdown", "`docker stop` with a 10 s request in flight", med("project_inflight"), "s",
            med("anchor_inflight"), anchor, note="the request must complete"),
        Row("6 shutdown", "in-flight 10 s request answered 200 before the container stopped",
            done("project_inflight"), anchor=done("anchor_inflight"), anchor_name=anchor),
    ]


RUNNERS: dict[str, Callable[[bool, dict[str, Any]], list[Row]]] = {
    "image": section_image, "start": section_start, "health": section_health, "proxy": section_proxy,
    "wal": section_wal, "shutdown": section_shutdown,
}


def parse_only(text: str | None) -> list[str]:
    if not text:
        return list(SECTIONS)
    chosen = [s.strip() for s in text.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in SECTIONS]
    if unknown or not chosen:
        raise SystemExit(f"bench: --only: unknown section(s) {', '.join(unknown) or '(none)'}; "
                         f"choose from {', '.join(SECTIONS)}")
    return [s for s in SECTIONS if s in chosen]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    env_quick = os.environ.get("BENCH_QUICK", "").lower() in ("1", "true", "yes")
    ap.add_argument("--quick", action="store_true", default=env_quick,
                    help="shorter durations, fewer runs, no cold build (default from BENCH_QUICK)")
    ap.add_argument("--only", help=f"comma-separated sections: {','.join(SECTIONS)}")
    args = ap.parse_args(argv)
    sections = parse_only(args.only or os.environ.get("BENCH_ONLY"))
    tree = find_odoo_tree()
    if tree is None:
        print(f"bench: {why_missing()}", file=sys.stderr)
        return 2
    RESULTS.mkdir(parents=True, exist_ok=True)
    facts = machine_facts()
    facts["loadavg_start"] = facts.pop("loadavg")
    say(f"{'quick' if args.quick else 'full'} run of {', '.join(sections)}; {facts_line(facts)}")
    ensure_base_image()
    prepare_odoo_context(tree)

    rows: list[Row] = []
    raw: dict[str, Any] = {}
    failures: dict[str, str] = {}
    timing: dict[str, float] = {}
    t_all = time.monotonic()
    for s in sections:
        t0 = time.monotonic()
        say(f"== {s} (load average {os.getloadavg()[0]:.2f})")
        try:
            rows += RUNNERS[s](args.quick, raw)
        except BenchFailure as exc:
            failures[s] = str(exc)
            say(f"FAILED {s}: {exc}")
        timing[s] = round(time.monotonic() - t0, 1)
        say(f"== {s} done in {timing[s]:.0f} s")
    facts["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    facts["total_s"] = round(time.monotonic() - t_all, 1)

    table = markdown_table(rows)
    mode = "quick (BENCH_QUICK=1)" if args.quick else "full"
    md = [f"Benchmarks, {mode} run, {facts_line(facts)}; load average "
          f"{' '.join(map(str, facts['loadavg_end']))} at the end; {facts['total_s'] / 60:.1f} min.", "",
          table, "",
          "Ratio = Loomworks ÷ anchor; `better` says which direction favours Loomworks. Anchors are "
          "measured in the same run unless marked (published)."]
    if failures:
        md += ["", "**FAILED:**", *[f"- {s}: {msg.splitlines()[0]}" for s, msg in failures.items()]]
    text = "\n".join(md) + "\n"
    (RESULTS / "summary.md").write_text(text)
    (RESULTS / "summary.json").write_text(json.dumps({
        "mode": mode, "sections": sections, "machine": facts, "section_seconds": timing,
        "rows": [r.to_dict() for r in rows], "failures": failures, "raw": raw,
    }, indent=2, default=str) + "\n")
    print("\n" + text)
    say(f"wrote {(RESULTS / 'summary.md').relative_to(REPO)} and summary.json")
    if failures:
        for s, msg in failures.items():
            print(f"bench: {s} FAILED: {msg}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
