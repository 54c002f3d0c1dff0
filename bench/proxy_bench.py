#!/usr/bin/env python3
"""Cost of the nginx edge: requests/s and p99 through nginx (TLS) vs. direct.

Starts a throwaway PostgreSQL cluster, a real Odoo 18 (threaded, one database
``bench`` with ``base``) when an Odoo tree is available, otherwise the tests'
stand-in upstream, and the project's nginx configuration via
nginx/entrypoint.sh on loopback. Then, with wrk:

* a small page (/web/login) and a static asset (/web/static/img/favicon.ico),
  direct to Odoo's HTTP port vs. through nginx over TLS (keep-alive), both
  sides warmed up first. Through nginx the asset comes from its static cache
  (the hit ratio is read from the access log's cs= field); it is measured once
  more with the cache bypassed (``Cache-Control: no-cache``: every request
  goes to Odoo and refreshes the entry), the edge's cost without the cache;
* the same small response from a minimal nginx upstream (``return 200``), direct
  vs. through the edge: the edge's own per-request cost without Odoo's;
* TLS handshakes/s: /nginx-health with ``Connection: close`` over TLS (a full
  handshake per request; tickets are off and wrk does not resume sessions)
  vs. the same over plain HTTP.

Prints a Markdown table and writes bench/results/proxy.json. Usage:
  .venv/bin/python bench/proxy_bench.py [--duration 10] [--connections 16]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import ssl
import subprocess
import sys
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.nginx.harness import (  # noqa: E402
    ACCESS_LOG_CACHE,
    HttpUpstream,
    NginxRun,
    entrypoint_env,
    make_root,
    port_open,
)
from tests.nginx.odoo_server import OdooServer  # noqa: E402
from tests.support.net import free_port  # noqa: E402
from tests.support.odoo_tree import find_odoo_tree  # noqa: E402
from tests.support.pg import PgCluster  # noqa: E402
from tests.support.wait import wait_for  # noqa: E402

RESULTS = REPO / "bench" / "results" / "proxy.json"
UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def wrk(url: str, *, duration: int, connections: int, threads: int = 2,
        headers: tuple[str, ...] = ()) -> dict[str, float]:
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency"]
    for h in headers:
        cmd += ["-H", h]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = re.search(r"50%\s+([\d.]+)(us|ms|s)\b", out)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: (.*)", out)
    return {
        "rps": rps,
        "p50_ms": float(p50.group(1)) * UNITS[p50.group(2)],
        "p99_ms": float(p99.group(1)) * UNITS[p99.group(2)],
        "non_2xx_3xx": int(errors.group(1)) if errors else 0,
        "socket_errors": sock.group(1).strip() if sock else "",
    }


def start_fast_upstream(root: Path, nginx: str) -> tuple[subprocess.Popen, int]:
    """A minimal nginx answering 1 KiB to everything: an upstream that costs ~nothing."""
    port = free_port()
    tmp = root / "fast"
    tmp.mkdir()
    conf = tmp / "nginx.conf"
    conf.write_text(
        f"pid {tmp}/nginx.pid; error_log stderr; worker_processes 1; events {{}}\n"
        f"http {{ access_log off; client_body_temp_path {tmp}/cb; proxy_temp_path {tmp}/px;"
        f" fastcgi_temp_path {tmp}/fc; uwsgi_temp_path {tmp}/uw; scgi_temp_path {tmp}/sc;\n"
        f" server {{ listen 127.0.0.1:{port}; default_type text/plain;"
        f" location / {{ return 200 '{'x' * 1024}'; }} }} }}\n"
    )
    proc = subprocess.Popen([nginx, "-c", str(conf), "-g", "daemon off;"])
    wait_for(lambda: port_open(port), 10, "the fast upstream")
    return proc, port


def cache_statuses(log: Path, offset: int, path: str) -> dict[str, float]:
    """Count the access log's cs= values for ``path`` written after ``offset``."""
    counts: dict[str, int] = {}
    with log.open("rb") as f:
        f.seek(offset)
        for line in f.read().decode(errors="replace").splitlines():
            m = ACCESS_LOG_CACHE.search(line)
            if m and m["uri"] == path:
                counts[m["cs"]] = counts.get(m["cs"], 0) + 1
    total = sum(counts.values())
    hits = counts.get("HIT", 0)
    return {"requests": total, "hits": hits, "hit_ratio": hits / total if total else 0.0,
            "by_status": counts}


def warm(url: str, context: ssl.SSLContext | None = None) -> None:
    for _ in range(3):
        with urllib.request.urlopen(url, timeout=60, context=context) as r:  # noqa: S310 - loopback
            r.read()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    ap.add_argument("--connections", type=int, default=8)
    args = ap.parse_args()
    for tool in ("wrk", "nginx"):
        if not shutil.which(tool) and not Path(f"/usr/sbin/{tool}").exists():
            sys.exit(f"proxy_bench: {tool} is not installed")

    load_at_start = os.getloadavg()[0]
    tree = find_odoo_tree()
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    cluster = odoo = stand_in = fast = None
    static_cache: dict[str, float] = {}
    root, edge_root, fast_root = make_root(), make_root(), make_root()
    edge: NginxRun | None = None
    fast_edge: NginxRun | None = None
    try:
        if tree:
            cluster = PgCluster().start()
            odoo = OdooServer(tree, cluster)
            odoo.prepare_role()
            print("initialising Odoo database 'bench' (-i base)...", file=sys.stderr)
            odoo.create_db("bench")
            odoo.start(db_filter="^bench$", proxy_mode=True)
            upstream_port, upstream_kind = odoo.port, "Odoo 18 (threaded, workers=0)"
            small, asset = "/web/login", "/web/static/img/favicon.ico"
        else:
            stand_in = HttpUpstream()
            upstream_port, upstream_kind = stand_in.port, "Python stand-in (no Odoo tree)"
            small, asset = "/small", "/web/static/x.js"
        edge = NginxRun(entrypoint_env(edge_root, LOOMWORKS_DOMAIN="localhost", NGINX_BIN=nginx,
                                       ODOO_HTTP_PORT=str(upstream_port), ODOO_WS_PORT=str(upstream_port)),
                        edge_root).start()
        direct = f"http://127.0.0.1:{upstream_port}"
        proxied = f"https://localhost:{edge.https_port}"  # SNI + Host "localhost" = the bare domain
        # Both sides warmed alike: Odoo's first answers, and nginx's static cache
        # filled (a cold asset under a burst: one request fetches it, the others
        # wait for it, nginx polling its cache lock every 500 ms).
        for path in (small, asset):
            warm(direct + path)
            warm(proxied + path, edge.tls_context())
        kw = {"duration": args.duration, "connections": args.connections}
        results: dict[str, dict[str, float]] = {}
        for name, path in (("small_page", small), ("static_asset", asset)):
            results[f"{name}_direct"] = wrk(direct + path, **kw)
            log_from = edge.log_path.stat().st_size
            results[f"{name}_nginx_tls"] = wrk(proxied + path, **kw)
            if name == "static_asset":
                static_cache = cache_statuses(edge.log_path, log_from, path)
        results["static_asset_nginx_tls_bypass"] = wrk(proxied + asset, headers=("Cache-Control: no-cache",),
                                                       **kw)
        close = ("Connection: close",)
        results["handshake_tls"] = wrk(f"{proxied}/nginx-health", headers=close, **kw)
        plain_url = f"http://localhost:{edge.http_port}/nginx-health"
        results["handshake_plain"] = wrk(plain_url, headers=close, **kw)
        results["keepalive_tls_health"] = wrk(f"{proxied}/nginx-health", **kw)
        edge.stop()

        fast, fast_port = start_fast_upstream(root, nginx)
        fast_edge = NginxRun(entrypoint_env(fast_root, LOOMWORKS_DOMAIN="localhost", NGINX_BIN=nginx,
                                            ODOO_HTTP_PORT=str(fast_port), ODOO_WS_PORT=str(fast_port)),
                             fast_root).start()
        results["fast_upstream_direct"] = wrk(f"http://127.0.0.1:{fast_port}/small", **kw)
        results["fast_upstream_nginx_tls"] = wrk(f"https://localhost:{fast_edge.https_port}/small", **kw)
    finally:
        for run in (edge, fast_edge):
            if run:
                run.stop()
        if fast:
            fast.terminate()
            fast.wait(timeout=10)
        if odoo:
            odoo.destroy()
        if cluster:
            cluster.destroy()
        if stand_in:
            stand_in.close()
        for d in (root, edge_root, fast_root):
            shutil.rmtree(d, ignore_errors=True)

    hs, plain = results["handshake_tls"]["rps"], results["handshake_plain"]["rps"]
    summary = {
        "upstream": upstream_kind,
        "paths": {"small_page": small, "static_asset": asset},
        "wrk": {"threads": 2, "connections": args.connections, "duration_s": args.duration},
        "host": {"cpus": os.cpu_count(), "machine": platform.machine(), "nginx": _nginx_version(),
                 "loadavg_1m_at_start": load_at_start},
        "results": results,
        "static_cache": static_cache,
        "tls_handshakes_per_s": hs,
        "tls_handshake_cost_ms_per_connection": round(1000 / hs - 1000 / plain, 3) if hs and plain else None,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(summary, indent=2) + "\n")

    print(f"## nginx edge benchmark ({upstream_kind}; wrk -t2 -c{args.connections} -d{args.duration}s, "
          f"{os.cpu_count()} CPUs shared by client, nginx and upstream)\n")
    print("| case | req/s | p50 ms | p99 ms | errors |")
    print("|---|---:|---:|---:|---|")
    for name, r in results.items():
        errs = f"{r['non_2xx_3xx']} non-2xx {r['socket_errors']}".strip()
        print(f"| {name} | {r['rps']:.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {errs} |")
    print(f"\nStatic cache during static_asset_nginx_tls: {static_cache['hits']:,} hits of "
          f"{static_cache['requests']:,} requests ({static_cache['hit_ratio']:.2%}); "
          "static_asset_nginx_tls_bypass sends Cache-Control: no-cache (every request to the upstream)")
    print(f"\nTLS handshakes/s (new connection per request): {hs:.0f}; "
          f"plain HTTP new connections/s: {plain:.0f}; extra cost per TLS connection: "
          f"{summary['tls_handshake_cost_ms_per_connection']} ms (wall, "
          f"{args.connections} concurrent)")
    print(f"\nJSON: {RESULTS.relative_to(REPO)}")
    return 0


def _nginx_version() -> str:
    r = subprocess.run([shutil.which("nginx") or "/usr/sbin/nginx", "-v"], capture_output=True, text=True,
                       check=False)
    return r.stderr.strip().removeprefix("nginx version: ")


if __name__ == "__main__":
    sys.exit(main())
