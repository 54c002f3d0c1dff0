"""Section `tls`: where a new TLS connection's time goes at the nginx edge. New connections/s
to /nginx-health (``Connection: close``: one request per connection) through the project's
nginx configuration (run by nginx/entrypoint.sh on loopback, its generated ECDSA P-256
certificate), three ways:

* plain HTTP (the anchor: the same nginx, the same client, no TLS);
* TLS, every connection a full handshake (the client offers no session);
* TLS, every connection resumed: the client offers the session of its first handshake, which
  nginx finds in its shared session cache (session tickets are off); each is checked to be a
  resumption (``SSLSocket.session_reused``).

The client is CLIENTS Python processes on this same machine: the load generator shares the
cores with nginx's workers (``worker_processes auto``: one per core), so each row states the
client's share of the CPU both used (process CPU times: the clients' own, nginx's from
/proc/PID/stat of the master and its workers). A connection that fails or an answer other than
200 fails the section.
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import shutil
import socket
import ssl
import time
from pathlib import Path

from bench import Context, say
from bench.report import BenchFailure, Row
from tests.support.nginx import NginxRun

DOMAIN = "localhost"
CLIENTS = max(1, os.cpu_count() or 1)
REQUEST = f"GET /nginx-health HTTP/1.1\r\nHost: {DOMAIN}\r\nConnection: close\r\n\r\n".encode()
GOALS = {"full": 0.25, "resumed": 0.5}  # issue 15: x new plain connections/s


def one_connection(port: int, ctx: ssl.SSLContext | None, session: ssl.SSLSession | None):
    """Connect, GET /nginx-health, read to the end; (status line, TLS session, reused)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        sock = ctx.wrap_socket(raw, server_hostname=DOMAIN, session=session) if ctx else raw
        try:
            sock.sendall(REQUEST)
            data = b""
            while chunk := sock.recv(4096):
                data += chunk
            status = data.split(b"\r\n", 1)[0]
            return status, getattr(sock, "session", None), getattr(sock, "session_reused", False)
        finally:
            if ctx:
                sock.close()


def client(port: int, mode: str, seconds: float, queue) -> None:
    ctx = None
    if mode != "plain":
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    session = None
    if mode == "resumed":  # the one full handshake whose session the others resume
        _, session, _ = one_connection(port, ctx, None)
    count = failed = not_resumed = 0
    start = time.monotonic()
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    while time.monotonic() - start < seconds:
        try:
            status, _, reused = one_connection(port, ctx, session)
        except OSError:
            failed += 1
            continue
        if status != b"HTTP/1.1 200 OK":
            failed += 1
        elif mode == "resumed" and not reused:
            not_resumed += 1
        count += 1
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    queue.put({"count": count, "failed": failed, "not_resumed": not_resumed, "cpu_s": cpu,
               "wall_s": time.monotonic() - start})


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


def measure_mode(edge: NginxRun, mode: str, seconds: float) -> dict:
    port = edge.local_port if mode == "plain" else edge.https_port
    master = int((Path(edge.env["LW_RUN_DIR"]) / "nginx.pid").read_text())
    queue = multiprocessing.Queue()
    procs = [multiprocessing.Process(target=client, args=(port, mode, seconds, queue))
             for _ in range(CLIENTS)]
    ng0 = nginx_cpu_s(master)
    for p in procs:
        p.start()
    results = [queue.get(timeout=seconds + 60) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    ng = nginx_cpu_s(master) - ng0
    count = sum(r["count"] for r in results)
    wall = max(r["wall_s"] for r in results)
    client_cpu = sum(r["cpu_s"] for r in results)
    return {"per_s": round(count / wall, 1), "connections": count,
            "failed": sum(r["failed"] for r in results),
            "not_resumed": sum(r["not_resumed"] for r in results), "client_cpu_s": round(client_cpu, 2),
            "nginx_cpu_s": round(ng, 2), "client_cpu_share": round(client_cpu / (client_cpu + ng), 3),
            "nginx_cpu_ms_per_connection": round(1000 * ng / count, 3) if count else None}


def run(ctx: Context) -> list[Row]:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        raise BenchFailure("nginx is not installed (the host tools of `make test`)")
    seconds = 3 if ctx.quick else 10
    raw = ctx.raw["tls"] = {"clients": CLIENTS, "cores": os.cpu_count(), "seconds": seconds}
    edge = NginxRun.create(nginx, LOOMWORKS_DOMAIN=DOMAIN, ODOO_HTTP_PORT="9", ODOO_WS_PORT="9")
    try:
        edge.start()
        for mode in ("plain", "full", "resumed"):
            measure_mode(edge, mode, 1)  # warm-up
            raw[mode] = measure_mode(edge, mode, seconds)
            say(f"  {mode}: {raw[mode]}")
    finally:
        edge.destroy()
    plain = raw["plain"]
    rows = [Row("4 tls", f"new plain-HTTP connections/s ({CLIENTS} client processes)", plain["per_s"], "/s",
                note=f"client's CPU share {plain['client_cpu_share']:.0%}")]
    for mode, label in (("full", "TLS full handshakes/s (no resumption)"),
                        ("resumed", "TLS resumed connections/s (nginx's session cache)")):
        r = raw[mode]
        rows.append(Row("4 tls", label, r["per_s"], "/s", plain["per_s"],
                        "new plain-HTTP connections/s, same run", better="higher",
                        note=f"goal {GOALS[mode]}x; client's CPU share {r['client_cpu_share']:.0%}; "
                             f"nginx {r['nginx_cpu_ms_per_connection']} ms CPU/connection"))
    bad = {m: raw[m] for m in ("plain", "full", "resumed") if raw[m]["failed"] or raw[m]["not_resumed"]}
    if bad:
        raise BenchFailure(f"tls: failed or unresumed connections: {bad}", rows)
    return rows
