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

Beside each goal, its ceiling: bench/tls_pkey.c times, alone on the machine and with the
same OpenSSL, the public-key operations a connection cannot do without (the server's ECDSA
P-256 signature and the client's check of it, one X25519 key generation and one derivation
on each side; a TLS 1.3 resumption keeps the two X25519 ones). A plain connection plus those
operations and nothing else (no key schedule, no records, no extra round trip) is the
cheapest a TLS connection could be with them, so its ratio is the highest any TLS software
linked to this OpenSSL could reach on this CPU: on the same cores (client and nginx CPU
together, as the rate rows) and per nginx CPU-second.
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
PKEY_SRC = Path(__file__).with_name("tls_pkey.c")
GOALS = {"full": 0.25, "resumed": 0.5}  # issue 15: x new plain connections/s
MODES = ("plain", "full", "resumed", "resumed12")
# The public-key operations (bench/tls_pkey.c's names) each side does per connection of a mode.
_KX = ("x25519_keygen_us", "x25519_derive_us")
PKEY_OPS = {"full": {"server": ("ecdsa_p256_sign_us", *_KX), "client": ("ecdsa_p256_verify_us", *_KX)},
            "resumed": {"server": _KX, "client": _KX}}
PKEY_WORDS = {("full", "both"): "ECDSA P-256 sign/verify and X25519 keygen + derive on each side",
              ("full", "server"): "the server's ECDSA P-256 sign and X25519 keygen + derive",
              ("resumed", "both"): "X25519 keygen + derive on each side",
              ("resumed", "server"): "the server's X25519 keygen + derive"}


def build(src: Path, workdir: Path) -> Path:
    """One of the section's C helpers compiled against the host's OpenSSL (gcc, libssl-dev)."""
    exe = workdir / src.stem
    gcc = shutil.which("gcc")
    if not gcc:
        raise BenchFailure(f"tls: gcc is not installed (needed to build bench/{src.name})")
    r = subprocess.run([gcc, "-O2", "-Wall", "-o", str(exe), str(src), "-lssl", "-lcrypto"],
                       capture_output=True, text=True, check=False)
    if r.returncode:
        raise BenchFailure(f"tls: bench/{src.name} does not build (libssl-dev?): {r.stderr.strip()}")
    return exe


def pkey_costs(exe: Path, key: Path, seconds: float) -> dict:
    """Microseconds of CPU per public-key operation (bench/tls_pkey.c), with nginx's own key."""
    r = subprocess.run([str(exe), str(key), str(seconds)], capture_output=True, text=True, check=False)
    if r.returncode:
        raise BenchFailure(f"tls: bench/tls_pkey.c failed: {r.stderr.strip()}")
    return json.loads(r.stdout)


def ceilings(raw: dict) -> dict[str, dict]:
    """Per goal mode: the ratios a plain connection plus that mode's public-key operations (and
    nothing else) would reach, on the shared cores and per nginx CPU-second."""
    plain, pk = raw["plain"], raw["pkey"]
    nginx_ms = 1000 * plain["nginx_cpu_s"] / plain["connections"]
    both_ms = nginx_ms + 1000 * plain["client_cpu_s"] / plain["connections"]
    out = {}
    for mode, sides in PKEY_OPS.items():
        server_ms, client_ms = (sum(pk[op] for op in sides[side]) / 1000 for side in ("server", "client"))
        out[mode] = {"server_ms": round(server_ms, 3), "client_ms": round(client_ms, 3),
                     "shared_cores": both_ms / (both_ms + server_ms + client_ms),
                     "per_nginx_cpu": nginx_ms / (nginx_ms + server_ms)}
    return out


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
        client, pkey = build(CLIENT_SRC, workdir), build(PKEY_SRC, workdir)
        edge.start()
        for mode in MODES:
            measure_mode(edge, client, mode, 1)  # warm-up
            raw[mode] = measure_mode(edge, client, mode, seconds)
            say(f"  {mode}: {raw[mode]}")
        raw["pkey"] = pkey_costs(pkey, edge.cert.with_name("privkey.pem"), 1 if ctx.quick else 3)
        say(f"  public-key operations alone: {raw['pkey']}")
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
    top = raw["ceilings"] = ceilings(raw)
    for mode, label in labels.items():
        r = raw[mode]
        goal = f"goal {GOALS[mode]}x; " if mode in GOALS else "no goal: the TLS machinery's floor; "
        rows.append(Row("4 tls", label, r["per_s"], "/s", plain["per_s"],
                        "new plain-HTTP connections/s, same run", better="higher",
                        note=f"{goal}client's CPU share {r['client_cpu_share']:.0%}; "
                             f"nginx {r['nginx_cpu_ms_per_connection']} ms CPU/connection"))
        if mode in top:
            rows.append(Row("4 tls", f"{label}: ceiling, a plain connection plus "
                            f"{PKEY_WORDS[mode, 'both']} only",
                            round(plain["per_s"] * top[mode]["shared_cores"]), "/s", plain["per_s"],
                            "new plain-HTTP connections/s, same run", better="higher",
                            note=f"goal {GOALS[mode]}x; server {top[mode]['server_ms']} ms + client "
                                 f"{top[mode]['client_ms']} ms of CPU, {raw['pkey']['openssl']}"))
    # The same comparison without the client: connections per second of nginx's own CPU (what
    # nginx could serve with the cores to itself), so the client's share cannot bend the ratio.
    per_cpu_s = {m: round(raw[m]["connections"] / raw[m]["nginx_cpu_s"]) for m in MODES}
    for mode, label in labels.items():
        goal = f"goal {GOALS[mode]}x; " if mode in GOALS else ""
        per_cpu_label = label.replace("/s", "", 1) + " per nginx CPU-second"
        rows.append(Row("4 tls", per_cpu_label, per_cpu_s[mode], "/CPU-s", per_cpu_s["plain"],
                        "plain-HTTP connections per nginx CPU-second, same run", better="higher",
                        note=f"{goal}nginx's CPU only"))
        if mode in top:
            rows.append(Row("4 tls", f"{per_cpu_label}: ceiling, a plain connection plus "
                            f"{PKEY_WORDS[mode, 'server']} only",
                            round(per_cpu_s["plain"] * top[mode]["per_nginx_cpu"]), "/CPU-s",
                            per_cpu_s["plain"], "plain-HTTP connections per nginx CPU-second, same run",
                            better="higher", note=f"goal {GOALS[mode]}x; {top[mode]['server_ms']} ms of CPU"))
    bad = {m: raw[m] for m in MODES if raw[m]["failed"] or raw[m]["not_resumed"]}
    if bad:
        raise BenchFailure(f"tls: failed or unresumed connections: {bad}", rows)
    return rows
