"""Security defaults of the running stack, checked on the effective containers (not the
YAML): users, privileges, capabilities, read-only roots, setuid files, exposure, Redis
and PostgreSQL authentication, the database manager, and a scan for secret values.

Also the bad-input edges that need the whole stack (Host header, X-Forwarded-For,
oversized upload); the per-component variants live in tests/nginx and tests/docker.
"""

from __future__ import annotations

import json
import secrets
import socket
import subprocess
from collections.abc import Iterator

import pytest
import requests

from tests.support.compose import SERVICES, Stack, dev_secret, docker
from tests.support.wait import wait_for

pytestmark = [pytest.mark.docker, pytest.mark.odoo]

# The four long dev secrets. admin_password's dev value is the word "admin" (also the
# login name), which cannot be told apart from ordinary text; it is only ever read by
# loomworks-db from /run/secrets and stored hashed (tests/docker checks that).
SECRET_NAMES = ("postgres_password", "db_password", "odoo_admin_passwd", "redis_password")
# Capabilities a service may add back after cap_drop ALL, and why:
ALLOWED_CAPS = {
    # entrypoint chowns the data/archive volumes as root, then setpriv's to postgres
    "postgres": {"CHOWN", "DAC_OVERRIDE", "FOWNER", "SETUID", "SETGID"},
    "redis": set(),
    "odoo": set(),
    "nginx": set(),
}
READ_ONLY_ROOT = ("odoo", "nginx", "redis")


@pytest.fixture(scope="module")
def stack(stacks) -> Stack:
    return stacks()


@pytest.fixture(scope="module")
def secret_values() -> list[str]:
    values = [dev_secret(n) for n in SECRET_NAMES]
    assert all(len(v) >= 16 for v in values), "dev secrets too short to scan for"
    return values


def proc_status(st: Stack, service: str) -> dict[str, dict[str, str]]:
    """/proc/<pid>/status of every process in the container (pid -> fields), and its Cmdline."""
    script = ('for d in /proc/[0-9]*; do [ -r "$d/status" ] && echo "@@${d#/proc/}" && cat "$d/status" && '
              'printf "Cmdline:\\t%s\\n" "$(tr "\\0" " " < "$d/cmdline")"; done')
    out = st.exec(service, "sh", "-c", script).stdout
    procs: dict[str, dict[str, str]] = {}
    cur: dict[str, str] = {}
    for line in out.splitlines():
        if line.startswith("@@"):
            cur = procs.setdefault(line[2:], {})
        elif ":" in line:
            k, v = line.split(":", 1)
            cur[k] = v.strip()
    return procs


# --- users, privileges, capabilities, read-only roots ------------------------


# postgres: the image starts as root to chown its volumes, then the entrypoint drops to
# the postgres user (setpriv). Only PID 1, dumb-init (signal forwarder and reaper, runs
# nothing else), stays root with the five capabilities compose adds back for that step.
ROOT_INIT = {"postgres": "dumb-init"}
PROBES = ("sh", "cat", "tr", "docker-healthcheck.sh"[:15], "pg_isready", "psql")  # our probe / a health check
# A health check script started through `#!/usr/bin/env bash` is named "bash": told by its command line.
PROBE_SCRIPT = "healthcheck"


def server_processes(st: Stack, service: str) -> dict[str, dict[str, str]]:
    procs = proc_status(st, service)
    if service in ROOT_INIT:
        assert procs["1"]["Name"] == ROOT_INIT[service], procs["1"]
        del procs["1"]
    return {pid: p for pid, p in procs.items()
            if p["Name"] not in PROBES and PROBE_SCRIPT not in p.get("Cmdline", "")}


@pytest.mark.parametrize("service", SERVICES)
def test_every_process_runs_as_a_non_root_user(stack: Stack, service: str, drill):
    procs = server_processes(stack, service)
    assert procs, f"{service}: no server process found"
    root = {pid: p["Name"] for pid, p in procs.items() if "0" in p["Uid"].split() + p["Gid"].split()}
    assert not root, f"{service}: processes running as root: {root}"
    user = stack.inspect(service)["Config"]["User"]
    if service in ROOT_INIT:
        assert user in ("", "root", "0"), user  # documented exception (ROOT_INIT)
    else:
        assert user and user.split(":")[0] not in ("root", "0"), f"{service} image user: {user!r}"
    drill(f"security: {service} runs as non-root", "passed")


@pytest.mark.parametrize("service", SERVICES)
def test_no_new_privileges_and_capabilities_dropped(stack: Stack, service: str, drill):
    host = stack.inspect(service)["HostConfig"]
    assert "no-new-privileges:true" in (host.get("SecurityOpt") or []), host.get("SecurityOpt")
    assert [c.upper() for c in host.get("CapDrop") or []] == ["ALL"], host.get("CapDrop")
    added = {c.upper().removeprefix("CAP_") for c in host.get("CapAdd") or []}
    assert added == ALLOWED_CAPS[service], f"{service} adds {added}"
    # ...and in effect: every server process has NoNewPrivs and no effective capability;
    # outside postgres not even a bounding set (nothing could be regained).
    for pid, p in server_processes(stack, service).items():
        assert p["NoNewPrivs"] == "1", (pid, p["Name"])
        assert int(p["CapEff"], 16) == 0 and int(p["CapPrm"], 16) == 0, (pid, p["Name"], p["CapEff"])
        if service not in ROOT_INIT:
            assert int(p["CapBnd"], 16) == 0, (pid, p["Name"], p["CapBnd"])
    drill(f"security: {service} no-new-privileges, cap_drop ALL", "passed")


@pytest.mark.parametrize("service", READ_ONLY_ROOT)
def test_read_only_root_filesystem(stack: Stack, service: str, drill):
    assert stack.inspect(service)["HostConfig"]["ReadonlyRootfs"] is True
    r = stack.exec(service, "sh", "-c", "touch /usr/lwtest-drill-probe", check=False)
    assert r.returncode != 0 and "Read-only file system" in r.stderr, r.stderr
    drill(f"security: {service} read-only root", "passed")


def test_no_setuid_or_setgid_files_in_the_odoo_image(stack: Stack, drill):
    image = stack.inspect("odoo")["Config"]["Image"]
    r = docker("run", "--rm", "--name", f"lwtest-drill-suid-{secrets.token_hex(4)}", "--network", "none",
               "--user", "0", "--entrypoint", "find", image, "/", "-xdev", "-perm", "/6000", "-type", "f")
    assert r.stdout.strip() == "", f"setuid/setgid files in {image}:\n{r.stdout}"
    drill("security: no setuid/setgid files in the Odoo image", "passed")


# --- exposure and authentication --------------------------------------------------


def test_postgres_and_redis_are_not_published(stack: Stack, drill):
    for service in ("postgres", "redis", "odoo"):
        info = stack.inspect(service)
        assert not info["HostConfig"]["PortBindings"], service
        published = {p: b for p, b in (info["NetworkSettings"]["Ports"] or {}).items() if b}
        assert not published, f"{service} publishes {published}"
    drill("security: PostgreSQL, Redis (and Odoo) not published", "passed")


def test_redis_refuses_unauthenticated_commands(stack: Stack, drill):
    probe = (
        "import socket; s = socket.create_connection(('redis', 6379), 5); "
        "s.sendall(b'PING\\r\\n'); print(s.recv(200).decode()); "
        "s.sendall(b'CONFIG GET requirepass\\r\\n'); print(s.recv(200).decode())"
    )
    out = stack.exec("odoo", "python3", "-c", probe).stdout
    assert out.count("-NOAUTH") == 2 and "PONG" not in out, out
    drill("security: Redis refuses unauthenticated commands", "passed")


def test_odoo_database_user_is_not_superuser_and_scram_everywhere(stack: Stack, drill):
    role = "SELECT rolsuper, rolcreaterole, rolreplication, rolbypassrls FROM pg_roles WHERE rolname = 'odoo'"
    assert stack.psql(role) == "f|f|f|f"
    # Odoo's own connection says so too.
    assert stack.psql("SELECT DISTINCT r.rolsuper FROM pg_stat_activity a JOIN pg_roles r "
                      "ON r.oid = a.usesysid WHERE a.usename = 'odoo'") == "f"
    hashes = stack.psql("SELECT rolname || ':' || left(rolpassword, 14) FROM pg_authid "
                        "WHERE rolpassword IS NOT NULL").splitlines()
    assert hashes and all(h.split(":", 1)[1] == "SCRAM-SHA-256$" for h in hashes), hashes
    methods = set(stack.psql("SELECT DISTINCT auth_method FROM pg_hba_file_rules WHERE type <> 'local'")
                  .splitlines())
    assert methods <= {"scram-sha-256", "reject"}, methods
    drill("security: Odoo DB user not superuser; scram-sha-256", "passed")


def test_database_manager_unreachable_and_list_db_off(stack: Stack, drill):
    conf = stack.exec("odoo", "grep", "-E", "^list_db", "/run/odoo/odoo.conf").stdout.split("=")[1].strip()
    assert conf == "False"
    paths = ("/web/database/manager", "/web/database/selector", "/web/database/list", "/web/database/backup",
             "/web/database/drop", "/xmlrpc/2/db", "/xmlrpc/db")
    for path in paths:
        for method in ("GET", "POST"):
            r = requests.request(method, stack.url(path), json={} if method == "POST" else None, timeout=30,
                                 allow_redirects=False)
            assert r.status_code in (403, 404), f"{method} {path} through nginx -> {r.status_code}"

    # Odoo itself, bypassing nginx (its port is not published): Odoo 18 still renders the
    # manager page (showing only the current database), but every management call is refused.
    def odoo_rpc(service: str, method: str, *args: object) -> dict:
        body = json.dumps({"jsonrpc": "2.0", "method": "call", "id": 1,
                           "params": {"service": service, "method": method, "args": list(args)}})
        r = subprocess.run(["docker", "exec", "-i", stack.container_id("odoo"), "curl", "-s", "-H",
                            "Content-Type: application/json", "--data-binary", "@-",
                            "http://127.0.0.1:8069/jsonrpc"],
                           input=body, capture_output=True, text=True, timeout=120, check=True)
        return json.loads(r.stdout)

    listing = odoo_rpc("db", "list")
    assert "AccessDenied" in json.dumps(listing.get("error")), listing
    # the right master password, a harmless call: refused because list_db is off
    dump = odoo_rpc("db", "dump", dev_secret("odoo_admin_passwd"), "loomworks", "dump")
    assert "result" not in dump and "AccessDenied" in json.dumps(dump.get("error")), str(dump)[:500]
    drill("security: database manager off (nginx 404, Odoo list_db=False)", "passed")


# --- secret scan ------------------------------------------------------------------

PROC_DUMP = "for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < \"$f\" 2>/dev/null; echo; done"


def test_no_secret_value_in_logs_inspect_history_or_process_args(stack: Stack, secret_values: list[str],
                                                                drill):
    found: list[str] = []
    for service in SERVICES:
        cid = stack.container_id(service)
        logs = docker("logs", cid)
        info = docker("inspect", cid).stdout
        image = json.loads(info)[0]["Config"]["Image"]
        history = docker("history", "--no-trunc", "--format", "{{.CreatedBy}} {{.Comment}}", image).stdout
        image_info = docker("image", "inspect", image).stdout
        # as the server's own user: only it (or CAP_SYS_PTRACE) may read /proc/<pid>/environ
        user = ["-u", "postgres"] if service == "postgres" else []
        procs = docker("exec", *user, cid, "sh", "-c", PROC_DUMP).stdout
        envs = docker("exec", *user, cid, "sh", "-c", PROC_DUMP.replace("cmdline", "environ")).stdout
        assert envs.count("PATH=") >= 1, f"{service}: no process environment was readable"
        for where, text in (("docker logs", logs.stdout + logs.stderr), ("docker inspect", info),
                            ("image history", history), ("image inspect", image_info),
                            ("/proc/*/cmdline", procs), ("/proc/*/environ", envs)):
            found += [f"{service}: {where} has {SECRET_NAMES[i]}"
                      for i, v in enumerate(secret_values) if v in text]
    assert not found, found
    drill("security: secret scan (docker logs, inspect, image history, /proc cmdline + environ)", "passed")


@pytest.fixture(scope="module")
def images_of(stack: Stack) -> Iterator[dict[str, str]]:
    yield {s: stack.inspect(s)["Config"]["Image"] for s in SERVICES}


@pytest.mark.parametrize("service", SERVICES)
def test_no_secret_value_in_any_file_of_the_image(images_of: dict[str, str], service: str,
                                                  secret_values: list[str], drill):
    """Every regular file of the image (no secrets mounted in this container) is grepped."""
    patterns = [a for v in secret_values for a in ("-e", v)]
    r = docker("run", "--rm", "--name", f"lwtest-drill-scan-{secrets.token_hex(4)}", "--network", "none",
               "--user", "0", "--entrypoint", "grep", images_of[service], "-rlF", *patterns, "/",
               "--exclude-dir=proc", "--exclude-dir=sys", "--exclude-dir=dev", check=False, timeout=600)
    assert r.returncode == 1, f"{images_of[service]}: grep {r.returncode}: {r.stdout[:2000]}{r.stderr[-999:]}"
    drill(f"security: no secret in any file of {service}'s image", "passed")


# --- bad input at the edges (whole stack) ----------------------------------------------


def raw_request(port: int, head: bytes, timeout: float = 10) -> bytes:
    """Send raw bytes; return whatever comes back ('' when nginx closes: 444)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(head)
        chunks = []
        while True:
            try:
                b = s.recv(65536)
            except ConnectionResetError:
                break
            if not b:
                break
            chunks.append(b)
    return b"".join(chunks)


@pytest.mark.parametrize("host", [
    b"evil.example", b"loomworks.localhost.evil.example", b"a..loomworks.localhost",
    b"-x.loomworks.localhost", b"x" * 300 + b".loomworks.localhost", b"loomworks.localhost/../x",
    b"loomworks.localhost\x00.evil.example", b"local host", b"",
])
def test_malformed_or_foreign_host_never_reaches_odoo(stack: Stack, host: bytes, drill):
    token = secrets.token_hex(6)
    reply = raw_request(stack.ports["HTTP_LOCAL_PORT"], b"GET /web/login?drill=" + token.encode()
                        + b" HTTP/1.1\r\nHost: " + host + b"\r\nConnection: close\r\n\r\n")
    status = reply.split(b"\r\n", 1)[0]
    assert reply == b"" or b" 400 " in status or b" 421 " in status, f"Host {host[:40]!r} -> {status!r}"
    assert token not in stack.logs("odoo", tail=400), "the request reached Odoo"
    drill("edge: malformed/foreign Host header refused (444/400)", "passed")


def test_forged_x_forwarded_for_is_not_believed(stack: Stack, drill):
    token = secrets.token_hex(6)
    forged = {"X-Forwarded-For": "203.0.113.66", "X-Real-IP": "203.0.113.67", "Forwarded": "for=203.0.113.68"}
    r = requests.get(stack.url(f"/web/login?drill={token}"), timeout=30, headers=forged)
    assert r.status_code == 200

    def logged() -> str | None:
        lines = [ln for ln in stack.logs("odoo", tail=400).splitlines() if token in ln]
        return lines[0] if lines else None

    line = wait_for(logged, 30, "Odoo's request log line", interval=0.5)
    assert "203.0.113." not in line, line
    drill("edge: forged X-Forwarded-For not believed", "passed")


def test_oversized_upload_is_refused_and_the_stack_stays_healthy(stack: Stack, drill):
    body = b"\0" * (100 * 1024 * 1024 + 1)
    try:
        r = requests.post(stack.url("/web/binary/upload_attachment"), data=body, timeout=120,
                          headers={"Content-Type": "application/octet-stream"})
        status = r.status_code
    except requests.ConnectionError:
        status = None  # nginx may close while we still send: also a refusal
    assert status in (413, None), status
    r = requests.get(stack.url("/web/health"), timeout=30)
    assert r.status_code == 200
    assert stack.health("odoo") == "healthy" and stack.health("nginx") == "healthy"
    drill("edge: 100 MB+1 upload through the stack -> 413", "passed")
