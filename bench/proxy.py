"""Section `proxy`: the nginx edge's cost (wrk), through nginx over TLS against direct to the
upstream: Odoo 18 and a minimal nginx upstream on a throwaway cluster, plus TLS handshakes/s
(bench/README.md). Any failed wrk request fails the section: wrk counts an answer slower than
WRK_TIMEOUT as a timeout and leaves it out of its percentiles."""

from __future__ import annotations

import re
import shutil
import subprocess
import urllib.request
from pathlib import Path

from bench import Context, say
from bench.report import BenchFailure, Row, fmt_value
from tests.support.net import free_port, port_open
from tests.support.nginx import NginxRun, make_root
from tests.support.odoo import Odoo
from tests.support.pg import PgCluster
from tests.support.wait import wait_for

WRK_TIMEOUT = "10s"
UNITS_MS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
SOCKET_ERRORS = ("connect", "read", "write", "timeout")
DIRECT = "direct to Odoo (no proxy), same run"


def parse_wrk(out: str) -> dict:
    """wrk --latency's output: req/s, p50/p99 (ms), requests, and the failures it reports."""

    def latency(pct: str) -> float:
        m = re.search(rf"^\s*{pct}%\s+([\d.]+)(us|ms|s|m|h)\s*$", out, re.M)
        if not m:
            raise ValueError(f"no {pct}% latency in wrk's output:\n{out}")
        return float(m[1]) * UNITS_MS[m[2]]

    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    requests = re.search(r"(\d+) requests in ", out)
    if not rps or not requests:
        raise ValueError(f"not wrk --latency output:\n{out}")
    sock = re.search(r"Socket errors: (.*)", out)
    errors = {k: int(v) for k, v in re.findall(r"(\w+) (\d+)", sock[1])} if sock else {}
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": float(rps[1]), "p50_ms": latency("50"), "p99_ms": latency("99"), "requests": int(requests[1]),
        "non_2xx_3xx": int(non_2xx[1]) if non_2xx else 0,
        "socket_errors": {k: errors.get(k, 0) for k in SOCKET_ERRORS},
    }


def failed(result: dict) -> int:
    """Requests of one wrk run that failed: non-2xx/3xx, connect/read/write errors, timeouts."""
    return result["non_2xx_3xx"] + sum(result["socket_errors"].values())


def failures_figure(results: dict[str, dict]) -> str:
    """'N failed of M' with the kinds that occurred, over the given wrk runs."""
    total = sum(r["requests"] for r in results.values())
    kinds = {"non-2xx/3xx": sum(r["non_2xx_3xx"] for r in results.values())}
    kinds |= {k: sum(r["socket_errors"][k] for r in results.values()) for k in SOCKET_ERRORS}
    detail = ", ".join(f"{k} {v:,}" for k, v in kinds.items() if v)
    return f"{sum(kinds.values()):,} failed of {fmt_value(total)}" + (f" ({detail})" if detail else "")


def wrk(url: str, duration: int, headers: tuple[str, ...] = ()) -> dict:
    cmd = ["wrk", "-t2", "-c8", f"-d{duration}s", "--timeout", WRK_TIMEOUT, "--latency"]
    for h in headers:
        cmd += ["-H", h]
    result = parse_wrk(subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout)
    say(f"  wrk {url} {' '.join(headers)}: {result['rps']:.0f} req/s, p50 {result['p50_ms']:.2f} ms, "
        f"p99 {result['p99_ms']:.2f} ms, {result['requests']} requests, {failed(result)} failed")
    return result


def minimal_upstream(root: Path, nginx: str) -> tuple[subprocess.Popen, int]:
    """A minimal nginx answering 1 KiB to everything: an upstream that costs next to nothing."""
    port = free_port()
    conf = root / "nginx.conf"
    conf.write_text(
        f"pid {root}/nginx.pid; error_log stderr; worker_processes 1; events {{}}\n"
        f"http {{ access_log off; client_body_temp_path {root}/cb; proxy_temp_path {root}/px;"
        f" fastcgi_temp_path {root}/fc; uwsgi_temp_path {root}/uw; scgi_temp_path {root}/sc;\n"
        f" server {{ listen 127.0.0.1:{port}; default_type text/plain;"
        f" location / {{ return 200 '{'x' * 1024}'; }} }} }}\n")
    proc = subprocess.Popen([nginx, "-c", str(conf), "-g", "daemon off;"])
    wait_for(lambda: port_open(port), 10, "the minimal upstream")
    return proc, port


def warm(url: str, edge: NginxRun | None = None) -> None:
    for _ in range(3):
        with urllib.request.urlopen(url, timeout=60, context=edge and edge.tls_context()) as r:  # noqa: S310
            r.read()


def measure(ctx: Context, nginx: str, duration: int) -> dict:
    raw: dict = {"wrk": {"threads": 2, "connections": 8, "duration_s": duration, "timeout": WRK_TIMEOUT}}
    res = raw["results"] = {}
    small, asset = "/web/login", "/web/static/img/favicon.ico"
    raw["paths"] = {"small_page": small, "static_asset": asset}
    cluster = PgCluster().start()
    odoo = Odoo(ctx.tree, cluster)
    runs: list[NginxRun] = []
    fast = None
    try:
        say("proxy: initialising Odoo database `bench` (-i base)")
        odoo.init_db("bench")
        odoo.start(dbfilter="^bench$", proxy_mode=True, workers=0).wait_http("/web/login")
        raw["upstream"] = "Odoo 18 (threaded, workers=0)"
        edge = NginxRun.create(nginx, LOOMWORKS_DOMAIN="localhost", ODOO_HTTP_PORT=str(odoo.port),
                               ODOO_WS_PORT=str(odoo.port))
        runs.append(edge.start())
        direct, proxied = odoo.url(""), f"https://localhost:{edge.https_port}"  # SNI + Host: the domain
        # Both sides warmed alike: Odoo's first answers, and nginx's static cache filled (a cold
        # asset under a burst: one request fetches it, the others wait on nginx's cache lock).
        for path in (small, asset):
            warm(direct + path)
            warm(proxied + path, edge)
        for name, path in (("small_page", small), ("static_asset", asset)):
            res[f"{name}_direct"] = wrk(direct + path, duration)
            res[f"{name}_nginx_tls"] = wrk(proxied + path, duration)
        # the asset's access log lines after the 3 warm-ups: the measured run's
        cs = edge.cache_statuses(asset, 3 + res["static_asset_nginx_tls"]["requests"], timeout=60)[3:]
        hits = cs.count("HIT")
        raw["static_cache"] = {"requests": len(cs), "hits": hits, "hit_ratio": hits / len(cs),
                               "by_status": {s: cs.count(s) for s in set(cs)}}
        res["static_asset_nginx_tls_bypass"] = wrk(proxied + asset, duration, ("Cache-Control: no-cache",))
        close = ("Connection: close",)
        res["handshake_tls"] = wrk(f"{proxied}/nginx-health", duration, close)
        res["handshake_plain"] = wrk(f"http://localhost:{edge.http_port}/nginx-health", duration, close)
        res["keepalive_tls_health"] = wrk(f"{proxied}/nginx-health", duration)
        edge.stop()

        fast_root = make_root()
        fast, fast_port = minimal_upstream(fast_root, nginx)
        fast_edge = NginxRun.create(nginx, LOOMWORKS_DOMAIN="localhost", ODOO_HTTP_PORT=str(fast_port),
                                    ODOO_WS_PORT=str(fast_port))
        runs.append(fast_edge.start())
        res["fast_upstream_direct"] = wrk(f"http://127.0.0.1:{fast_port}/small", duration)
        res["fast_upstream_nginx_tls"] = wrk(f"https://localhost:{fast_edge.https_port}/small", duration)
    finally:
        for r in runs:
            r.destroy()
        if fast:
            fast.terminate()
            fast.wait(timeout=10)
            shutil.rmtree(fast_root, ignore_errors=True)
        odoo.destroy()
        cluster.destroy()
    hs, plain = res["handshake_tls"]["rps"], res["handshake_plain"]["rps"]
    raw["tls_handshake_cost_ms_per_connection"] = round(1000 / hs - 1000 / plain, 3) if hs and plain else None
    raw["nginx"] = subprocess.run([nginx, "-v"], capture_output=True, text=True, check=False).stderr.strip()
    return raw


def run(ctx: Context) -> list[Row]:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if missing := [t for t in ("wrk", nginx) if not shutil.which(t)]:
        raise BenchFailure(f"{', '.join(missing)} not installed (the host tools of `make test`)")
    p = ctx.raw["proxy"] = measure(ctx, nginx, 3 if ctx.quick else 10)
    res = p["results"]
    rows = []
    for key, label in (("small_page", f"small page {p['paths']['small_page']}"),
                       ("static_asset", f"static asset {p['paths']['static_asset']}")):
        ng, di = res[f"{key}_nginx_tls"], res[f"{key}_direct"]
        rows += [
            Row("4 proxy", f"{label} through nginx TLS: req/s", ng["rps"], "req/s", di["rps"], DIRECT,
                better="higher"),
            Row("4 proxy", f"{label} through nginx TLS: p99", ng["p99_ms"], "ms", di["p99_ms"], DIRECT),
        ]
    direct = {k: r for k, r in res.items() if k.endswith("_direct")}
    through = {k: r for k, r in res.items() if k not in direct}
    rows += [
        Row("4 proxy", "TLS handshakes/s (new connection per request)", res["handshake_tls"]["rps"], "/s",
            res["handshake_plain"]["rps"], "new plain-HTTP connections/s, same nginx", better="higher"),
        Row("4 proxy", "edge's own cost: minimal upstream through nginx TLS, req/s",
            res["fast_upstream_nginx_tls"]["rps"], "req/s", res["fast_upstream_direct"]["rps"],
            "the minimal upstream direct", better="higher"),
        Row("4 proxy", f"failed requests, every wrk run through nginx (non-2xx/3xx, socket errors, "
            f"timeouts over {WRK_TIMEOUT})", failures_figure(through), anchor=failures_figure(direct),
            anchor_name="every wrk run direct"),
    ]
    if bad := {k: r for k, r in res.items() if failed(r)}:
        raise BenchFailure("proxy: failed requests: " + "; ".join(
            f"{k}: non-2xx {r['non_2xx_3xx']}, socket {r['socket_errors']}" for k, r in bad.items()), rows)
    return rows
