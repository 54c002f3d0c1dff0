"""Section `tls`: where a new TLS connection's time goes at the nginx edge. New connections/s
to /nginx-health (``Connection: close``: one request per connection) through the project's
nginx configuration (run by nginx/entrypoint.sh on loopback, its generated ECDSA P-256
certificate), three ways:

* plain HTTP (the anchor: the same nginx, the same client, no TLS);
* TLS, every connection a full handshake (the client offers no session);
* TLS, every connection resumed: the client offers the session of the connection before
  (as a browser does), which nginx finds in its shared session cache (session tickets are
  off); the client counts every connection the server did not resume. TLS 1.3 resumes with a
  key exchange (psk_dhe_ke, what clients offer);
* the same with TLS 1.2 at most: a session-ID resumption has no public-key operation at all,
  so it shows what the TLS machinery itself costs (the floor under the two rows above).

The client is bench/tls_client.c (compiled here with the host's gcc and OpenSSL), CLIENTS
processes on this same machine: the load generator shares the cores with nginx's workers
(``worker_processes auto``: one per core), so each row states the client's share of the CPU
both used (the clients' CPU times; nginx's from /proc/PID/stat of the master and its
workers) and nginx's CPU per connection. A connection that fails or an answer other than
200 fails the section.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from bench import Context, say
from bench.report import BenchFailure, Row
from tests.support.nginx import NginxRun

DOMAIN = "localhost"
CLIENTS = 8 * max(1, os.cpu_count() or 1)
CLIENT_SRC = Path(__file__).with_name("tls_client.c")
GOALS = {"full": 0.25, "resumed": 0.5}  # issue 15: x new plain connections/s
MODES = ("plain", "full", "resumed", "resumed12")


def build_client(workdir: Path) -> Path:
    """bench/tls_client.c compiled against the host's OpenSSL (gcc, libssl-dev)."""
    exe = workdir / "tls_client"
    gcc = shutil.which("gcc")
    if not gcc:
        raise BenchFailure("tls: gcc is not installed (needed to build bench/tls_client.c)")
    r = subprocess.run([gcc, "-O2", "-Wall", "-o", str(exe), str(CLIENT_SRC), "-lssl", "-lcrypto"],
                       capture_output=True, text=True, check=False)
    if r.returncode:
        raise BenchFailure(f"tls: bench/tls_client.c does not build (libssl-dev?): {r.stderr.strip()}")
    return exe


def nginx_cpu_s(master_pid: int) -> float:
    """CPU seconds (user + system) of nginx's master and its workers so far."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid, ppid = int(stat.parent.name), int(fields[1])
        if pid == master_pid or ppid == master_pid:
            total += int(fields[11]) + int(fields[12])
    return total / tick


def measure_mode(edge: NginxRun, client: Path, mode: str, seconds: float) -> dict:
    port = edge.local_port if mode == "plain" else edge.https_port
    master = int((Path(edge.env["LW_RUN_DIR"]) / "nginx.pid").read_text())
    cmd = [str(client), mode, str(port), DOMAIN, str(seconds)]
    ng0, cpu0, start = nginx_cpu_s(master), resource.getrusage(resource.RUSAGE_CHILDREN), time.monotonic()
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) for _ in range(CLIENTS)]
    results = [json.loads(p.communicate(timeout=seconds + 60)[0]) for p in procs]
    wall, cpu1 = time.monotonic() - start, resource.getrusage(resource.RUSAGE_CHILDREN)
    ng = nginx_cpu_s(master) - ng0
    if any(p.returncode for p in procs):
        raise BenchFailure(f"tls: the {mode} client failed: {[p.returncode for p in procs]}")
    client_cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    count = sum(r["count"] for r in results)
    return {"per_s": round(count / wall, 1), "connections": count,
            "failed": sum(r["failed"] for r in results),
            "not_resumed": sum(r["not_resumed"] for r in results), "client_cpu_s": round(client_cpu, 2),
            "nginx_cpu_s": round(ng, 2), "client_cpu_share": round(client_cpu / (client_cpu + ng), 3),
            "nginx_cpu_ms_per_connection": round(1000 * ng / count, 3) if count else None,
            "client_cpu_ms_per_connection": round(1000 * client_cpu / count, 3) if count else None}


def run(ctx: Context) -> list[Row]:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        raise BenchFailure("nginx is not installed (the host tools of `make test`)")
    seconds = 3 if ctx.quick else 10
    raw = ctx.raw["tls"] = {"clients": CLIENTS, "cores": os.cpu_count(), "seconds": seconds}
    workdir = Path(tempfile.mkdtemp(prefix="lwbench-tls-"))
    edge = NginxRun.create(nginx, LOOMWORKS_DOMAIN=DOMAIN, ODOO_HTTP_PORT="9", ODOO_WS_PORT="9")
    try:
        client = build_client(workdir)
        edge.start()
        for mode in MODES:
            measure_mode(edge, client, mode, 1)  # warm-up
            raw[mode] = measure_mode(edge, client, mode, seconds)
            say(f"  {mode}: {raw[mode]}")
    finally:
        edge.destroy()
        shutil.rmtree(workdir, ignore_errors=True)
    plain = raw["plain"]
    rows = [Row("4 tls", f"new plain-HTTP connections/s ({CLIENTS} client processes)", plain["per_s"], "/s",
                note=f"client's CPU share {plain['client_cpu_share']:.0%}; "
                     f"nginx {plain['nginx_cpu_ms_per_connection']} ms CPU/connection")]
    labels = {"full": "TLS full handshakes/s (no resumption)",
              "resumed": "TLS resumed connections/s (nginx's session cache)",
              "resumed12": "TLS 1.2 resumed connections/s (session ID: no key exchange)"}
    for mode, label in labels.items():
        r = raw[mode]
        goal = f"goal {GOALS[mode]}x; " if mode in GOALS else "no goal: the TLS machinery's floor; "
        rows.append(Row("4 tls", label, r["per_s"], "/s", plain["per_s"],
                        "new plain-HTTP connections/s, same run", better="higher",
                        note=f"{goal}client's CPU share {r['client_cpu_share']:.0%}; "
                             f"nginx {r['nginx_cpu_ms_per_connection']} ms CPU/connection"))
    # The same comparison without the client: connections per second of nginx's own CPU (what
    # nginx could serve with the cores to itself), so the client's share cannot bend the ratio.
    per_cpu_s = {m: round(raw[m]["connections"] / raw[m]["nginx_cpu_s"]) for m in MODES}
    for mode, label in labels.items():
        goal = f"goal {GOALS[mode]}x; " if mode in GOALS else ""
        per_cpu_label = label.replace("/s", "", 1) + " per nginx CPU-second"
        rows.append(Row("4 tls", per_cpu_label, per_cpu_s[mode], "/CPU-s", per_cpu_s["plain"],
                        "plain-HTTP connections per nginx CPU-second, same run", better="higher",
                        note=f"{goal}nginx's CPU only"))
    bad = {m: raw[m] for m in MODES if raw[m]["failed"] or raw[m]["not_resumed"]}
    if bad:
        raise BenchFailure(f"tls: failed or unresumed connections: {bad}", rows)
    return rows
