"""Security defaults of the running stack, on the effective containers (not the YAML): users,
privileges, capabilities, read-only roots, setuid files, exposure, Redis and PostgreSQL auth, the
database manager, a scan for secret values; the bad-input edges that need the whole stack (Host,
X-Forwarded-For, oversized upload); last, the stack made multi-tenant (DB_NAME= DBFILTER=^%d$)."""

from __future__ import annotations

import json
import re
import secrets
import socket
import ssl
import subprocess
from contextlib import suppress

import pytest
import requests

from tests.support import nginx as edge
from tests.support.compose import SERVICES, Stack, dev_secret, docker
from tests.support.nginx import MB, Zeros, unverified_tls
from tests.support.wait import wait_for

pytestmark = [pytest.mark.docker, pytest.mark.odoo]

# The four long dev secrets; admin_password's dev value "admin" is ordinary text (also the
# login): loomworks-db only reads it from /run/secrets and stores it hashed (tests/docker checks).
SECRET_NAMES = ("postgres_password", "db_password", "odoo_admin_passwd", "redis_password")
# Capabilities a service may add back after cap_drop ALL, and why:
ALLOWED_CAPS = {
    # entrypoint chowns the data/archive volumes as root, then setpriv's to postgres
    "postgres": {"CHOWN", "DAC_OVERRIDE", "FOWNER", "SETUID", "SETGID", "KILL"},
    # the same entrypoint step (postgres image), then backup-scheduler as postgres
    "backup": {"CHOWN", "DAC_OVERRIDE", "FOWNER", "SETUID", "SETGID", "KILL"},
    "walstream": {"CHOWN", "DAC_OVERRIDE", "FOWNER", "SETUID", "SETGID", "KILL"},
    "filestore": set(),
    "redis": set(),
    "odoo": set(),
    "nginx": set(),
}
# The writable paths besides named volumes, per read-only service (README's Security defaults).
TMPFS = {"odoo": {"/run/odoo", "/tmp"}, "nginx": {"/tmp/nginx", "/var/cache/nginx"}, "redis": {"/run/redis"},
         "filestore": {"/tmp"}}
READ_ONLY_ROOT = tuple(TMPFS)
# The user every server process runs as (postgres, backup, walstream: all but PID 1, see ROOT_INIT).
UIDS = {"postgres": 999, "backup": 999, "walstream": 999, "filestore": 1000, "redis": 999, "odoo": 1000,
        "nginx": 101}
DOMAIN = "loomworks.localhost"  # the nginx image's default LOOMWORKS_DOMAIN (the stack sets none)


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


# postgres starts as root to chown its volumes, then setpriv's to postgres; only PID 1, dumb-init
# (forwards signals, reaps), stays root, with the six capabilities compose adds back for that
# (KILL: to forward the stop signal); so do the backup and walstream services (the same image).
ROOT_INIT = {"postgres": "dumb-init", "backup": "dumb-init", "walstream": "dumb-init"}
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
    uid = str(UIDS[service])  # real, effective, saved and filesystem uid
    other = {pid: (p["Name"], p["Uid"]) for pid, p in procs.items() if set(p["Uid"].split()) != {uid}}
    assert not other, f"{service}: processes not running as uid {uid}: {other}"
    user = stack.inspect(service)["Config"]["User"]
    if service in ROOT_INIT:
        assert user in ("", "root", "0"), user  # documented exception (ROOT_INIT)
        init = ROOT_INIT[service]
        name = f"security: every {service} process runs as uid {uid} (PID 1, {init}, stays root)"
    else:
        assert user and user.split(":")[0] not in ("root", "0"), f"{service} image user: {user!r}"
        name = f"security: every {service} process runs as uid {uid}"
    drill(name, "passed")


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
    info = stack.inspect(service)
    assert info["HostConfig"]["ReadonlyRootfs"] is True
    r = stack.exec(service, "sh", "-c", "touch /usr/lwtest-drill-probe", check=False)
    assert r.returncode != 0 and "Read-only file system" in r.stderr, r.stderr
    # writable: exactly the documented tmpfs, and named volumes (every other mount is read-only)
    tmpfs = set(info["HostConfig"].get("Tmpfs") or {}) | {m["Destination"] for m in info["Mounts"]
                                                           if m["Type"] == "tmpfs"}
    assert tmpfs == TMPFS[service], tmpfs
    rw = [(m["Type"], m["Destination"]) for m in info["Mounts"] if m["RW"] and m["Type"] != "tmpfs"]
    assert rw and all(kind == "volume" for kind, _ in rw), rw
    drill(f"security: {service} read-only root; writable: its volumes ({', '.join(d for _, d in rw)}) and "
          f"tmpfs {', '.join(sorted(tmpfs))}", "passed")


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
    bindings = stack.inspect("nginx")["HostConfig"]["PortBindings"]
    assert bindings and {b["HostIp"] for bs in bindings.values() for b in bs} == {"127.0.0.1"}, bindings
    drill("security: PostgreSQL, Redis and Odoo not published; nginx only on 127.0.0.1", "passed")


def test_redis_refuses_unauthenticated_commands(stack: Stack, drill):
    probe = ("import socket; s = socket.create_connection(('redis', 6379), 5); "
             "s.sendall(b'PING\\r\\n'); print(s.recv(200).decode()); "
             "s.sendall(b'CONFIG GET requirepass\\r\\n'); print(s.recv(200).decode())")
    out = stack.exec("odoo", "python3", "-c", probe).stdout
    assert out.count("-NOAUTH") == 2 and "PONG" not in out, out
    drill("security: Redis refuses unauthenticated commands", "passed")


def test_odoo_database_user_is_not_superuser_and_scram_everywhere(stack: Stack, drill):
    role = ("SELECT rolsuper, rolcreaterole, rolreplication, rolbypassrls, rolcreatedb "
            "FROM pg_roles WHERE rolname = 'odoo'")
    assert stack.psql(role) == "f|f|f|f|t"  # CREATEDB only
    # Odoo's own connection says so too.
    assert stack.psql("SELECT DISTINCT r.rolsuper FROM pg_stat_activity a JOIN pg_roles r "
                      "ON r.oid = a.usesysid WHERE a.usename = 'odoo'") == "f"
    hashes = stack.psql("SELECT rolname || ':' || left(rolpassword, 14) FROM pg_authid "
                        "WHERE rolpassword IS NOT NULL").splitlines()
    assert hashes and all(h.split(":", 1)[1] == "SCRAM-SHA-256$" for h in hashes), hashes
    methods = set(stack.psql("SELECT DISTINCT auth_method FROM pg_hba_file_rules WHERE type <> 'local'")
                  .splitlines())
    assert "scram-sha-256" in methods and methods <= {"scram-sha-256", "reject"}, methods
    drill("security: Odoo DB user not superuser (CREATEDB only); SCRAM-SHA-256 passwords and pg_hba",
          "passed")


def test_database_manager_unreachable_and_list_db_off(stack: Stack, drill):
    conf = stack.exec("odoo", "grep", "-E", "^list_db", "/run/odoo/odoo.conf").stdout.split("=")[1].strip()
    assert conf == "False"
    paths = ("/web/database/manager", "/web/database/selector", "/web/database/list", "/web/database/backup",
             "/web/database/drop", "/xmlrpc/2/db", "/xmlrpc/db")
    for path in paths:
        for method in ("GET", "POST"):
            r = requests.request(method, stack.url(path), json={} if method == "POST" else None, timeout=30,
                                 allow_redirects=False)
            assert r.status_code == 404, f"{method} {path} through nginx -> {r.status_code}"

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
    drill("security: database manager off (nginx 404 for GET and POST, Odoo list_db=False, db.list and "
          "db.dump refused)", "passed")


# --- secret scan ------------------------------------------------------------------

PROC_DUMP = "for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < \"$f\" 2>/dev/null; echo; done"
# Each readable /proc/<pid>/environ, after a line @@<pid>. Reading another process's environ
# needs its uid (no container keeps CAP_SYS_PTRACE): postgres is read as root (PID 1,
# dumb-init) and as postgres (the server); backup and walstream (the same image) likewise; the
# other services as their image's (or compose's) user.
ENVIRON_DUMP = ('for d in /proc/[0-9]*; do if e=$(tr "\\0" "\\n" 2>/dev/null < "$d/environ"); then '
                'echo "@@${d#/proc/}"; echo "$e"; fi; done')
SCAN_USERS = {"postgres": ("0", "postgres"), "backup": ("0", "postgres"), "walstream": ("0", "postgres")}


def environ_of_every_process(st: Stack, service: str) -> str:
    """Every server process's environment (asserted: none was unreadable)."""
    before = set(server_processes(st, service)) | ({"1"} if service in ROOT_INIT else set())
    read: set[str] = set()
    texts = []
    for user in SCAN_USERS.get(service, (None,)):
        out = docker("exec", *(["-u", user] if user else []), st.container_id(service), "sh", "-c",
                     ENVIRON_DUMP).stdout
        for chunk in out.split("@@")[1:]:
            pid, _, text = chunk.partition("\n")
            read.add(pid)
            texts.append(text)
    after = set(server_processes(st, service)) | ({"1"} if service in ROOT_INIT else set())
    unread = (before & after) - read
    assert not unread, f"{service}: environment of processes {sorted(unread)} not read"
    return "\n".join(texts)


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
        procs = docker("exec", cid, "sh", "-c", PROC_DUMP).stdout  # cmdline: readable by any user
        envs = environ_of_every_process(stack, service)
        assert envs.count("PATH=") >= 1, f"{service}: no process environment was readable"
        for where, text in (("docker logs", logs.stdout + logs.stderr), ("docker inspect", info),
                            ("image history", history), ("image inspect", image_info),
                            ("/proc/*/cmdline", procs), ("/proc/*/environ", envs)):
            found += [f"{service}: {where} has {SECRET_NAMES[i]}"
                      for i, v in enumerate(secret_values) if v in text]
    assert not found, found
    drill("security: secret scan (docker logs, inspect, image history and config, /proc cmdline and environ "
          "of every process)", "passed")


@pytest.fixture(scope="module")
def images_of(stack: Stack) -> dict[str, str]:
    return {s: stack.inspect(s)["Config"]["Image"] for s in SERVICES}


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
    """Send raw bytes; return whatever comes back (b'' when nginx closes: 444)."""
    chunks = []
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(head)
        with suppress(ConnectionResetError):
            while b := s.recv(65536):
                chunks.append(b)
    return b"".join(chunks)


DROPPED = "dropped without an answer (444)"
BAD_REQUEST = "400 Bad Request"
MISDIRECTED = "421 Misdirected Request"
HANDSHAKE_REFUSED = "TLS handshake refused (unrecognized name)"


def odoo_never_saw(st: Stack, token: str) -> None:
    assert token not in st.logs("odoo", tail=400), "the request reached Odoo"


BAD_HOSTS = {  # Host header on the local port -> what nginx answers
    **dict.fromkeys((b"evil.example", b"loomworks.localhost.evil.example", b"a.b.loomworks.localhost",
                     b"-x.loomworks.localhost", b"x" * 300 + b".loomworks.localhost"), DROPPED),
    **dict.fromkeys((b"a..loomworks.localhost", b"loomworks.localhost/../x",
                     b"loomworks.localhost\x00.evil.example", b"local host", b""), BAD_REQUEST),
}


@pytest.mark.parametrize(("host", "expected"), BAD_HOSTS.items(), ids=[
    h.decode().replace("x" * 300, "x*300").replace("\0", "<NUL>") or "(empty)" for h in BAD_HOSTS])
def test_malformed_or_foreign_host_never_reaches_odoo(stack: Stack, host: bytes, expected: str,
                                                      request: pytest.FixtureRequest, drill):
    """The local listener (what localhost:8069 is): nginx answers exactly ``expected``."""
    token = secrets.token_hex(6)
    reply = raw_request(stack.ports["HTTP_LOCAL_PORT"], b"GET /web/login?drill=" + token.encode()
                        + b" HTTP/1.1\r\nHost: " + host + b"\r\nConnection: close\r\n\r\n")
    status = reply.split(b"\r\n", 1)[0]
    seen = DROPPED if reply == b"" else BAD_REQUEST if status == b"HTTP/1.1 400 Bad Request" else repr(status)
    assert seen == expected, f"Host {host[:40]!r} -> {reply[:200]!r}"
    odoo_never_saw(stack, token)
    drill("edge: malformed/foreign Host header on the local port never reaches Odoo", seen,
          case=f"`{request.node.callspec.id}`")


@pytest.mark.parametrize(("sni", "host", "expected"), [
    pytest.param(DOMAIN, "evil.example", MISDIRECTED, id="SNI loomworks.localhost, Host evil.example"),
    pytest.param(DOMAIN, "a.b.loomworks.localhost", MISDIRECTED,
                 id="SNI loomworks.localhost, Host a.b.loomworks.localhost"),
    pytest.param("evil.example", "evil.example", HANDSHAKE_REFUSED, id="SNI evil.example"),
])
def test_foreign_host_on_tls_never_reaches_odoo(stack: Stack, sni: str, host: str, expected: str,
                                                request: pytest.FixtureRequest, drill):
    """The TLS listener: a name nginx has no certificate for gets no handshake; a known SNI
    with a foreign Host gets 421."""
    token = secrets.token_hex(6)
    try:
        r = edge.request(stack.ports["HTTPS_PORT"], sni, f"/web/login?drill={token}",
                         context=unverified_tls(), headers={"Host": host}, source="127.0.0.1")
        seen = MISDIRECTED if r.status == 421 else str(r.status)
    except ssl.SSLError as exc:
        seen = HANDSHAKE_REFUSED if "UNRECOGNIZED_NAME" in str(exc).upper() else repr(exc)
    assert seen == expected, (sni, host, seen)
    odoo_never_saw(stack, token)
    drill("edge: foreign Host or SNI on TLS never reaches Odoo", seen, case=f"`{request.node.callspec.id}`")


def test_forged_x_forwarded_for_is_not_believed(stack: Stack, drill):
    """Odoo (proxy_mode) logs the address nginx saw, never the forged ones."""
    token = secrets.token_hex(6)
    forged = {"X-Forwarded-For": "203.0.113.66", "X-Real-IP": "203.0.113.67", "Forwarded": "for=203.0.113.68"}
    r = requests.get(stack.url(f"/web/login?drill={token}"), timeout=30, headers=forged)
    assert r.status_code == 200

    def logged(service: str, pattern: str) -> str | None:
        m = re.search(pattern, stack.logs(service, tail=400))
        return m.group(1) if m else None

    # nginx's access log starts with $remote_addr; Odoo's werkzeug line with the client address
    request_line = rf'"GET /web/login\?drill={token} '
    saw = wait_for(lambda: logged("nginx", rf'\| (\S+) "[^"]*" \[[^]]*\] {request_line}'),
                   30, "nginx's access log line", interval=0.5)
    odoo = wait_for(lambda: logged("odoo", rf"werkzeug: (\S+) - - \[[^]]*\] {request_line}"),
                    30, "Odoo's request log line", interval=0.5)
    assert odoo == saw and not saw.startswith("203.0.113."), (saw, odoo)
    drill("edge: forged X-Forwarded-For not believed", f"Odoo logged the address nginx saw ({saw})")


def test_oversized_upload_is_refused_and_the_stack_stays_healthy(stack: Stack, drill):
    """100 MB + 1 byte sent in full: nginx's 413 page (nginx/html/413.html) comes back."""
    size = 100 * MB + 1
    r = edge.request(stack.ports["HTTP_LOCAL_PORT"], "127.0.0.1", "/web/binary/upload_attachment",
                     method="POST", tls=False, body=Zeros(size), source="127.0.0.1", timeout=120,
                     headers={"Content-Length": str(size), "Content-Type": "application/octet-stream"})
    assert r.status == 413 and b"Upload too large: the limit is 100 MB." in r.body, (r.status, r.body[:300])
    r = requests.get(stack.url("/web/health"), timeout=30)
    assert r.status_code == 200 and stack.health("odoo") == "healthy" and stack.health("nginx") == "healthy"
    drill("edge: 100 MB+1 upload through the stack -> 413",
          "413 with nginx's page; odoo and nginx stay healthy")


# --- multi-tenant: dbfilter on the running stack (last: the stack stays multi-tenant) ----------

TENANTS = ("acme", "bigco")


@pytest.fixture(scope="module")
def tenants(stack: Stack) -> Stack:
    """The module's stack made multi-tenant as the README says (odoo re-created with DB_NAME= and
    DBFILTER=^%d$), with two tenant databases; used last: it stays multi-tenant until the end."""
    stack.extra_env.update(DB_NAME="", DBFILTER="^%d$")
    stack.up("odoo")  # its environment changed: re-created; postgres, redis and nginx stay
    stack.wait_service_healthy("odoo", timeout=300)
    conf = stack.exec("odoo", "cat", "/run/odoo/odoo.conf").stdout
    assert re.search(r"^dbfilter = \^%d\$$", conf, re.M) and not re.search(r"^db_name = \S", conf, re.M), conf
    for db in TENANTS:
        stack.run("exec", "-T", "odoo", "odoo", "-d", db, "-i", "base", "--without-demo=all", "--no-http",
                  "--stop-after-init", timeout=900)
    # nginx resolves odoo per request (cached 10 s): wait until it reaches the new container
    wait_for(lambda: requests.get(stack.url("/web/health"), timeout=10).status_code == 200, 60,
             "nginx reaching the re-created odoo", interval=0.5)
    return stack


def authenticate_as(st: Stack, host: str, db: str, tls: bool) -> dict:
    """/web/session/authenticate (admin/admin: Odoo's own -i base) with ``host`` as the Host
    (and SNI on TLS), through nginx's local port or its TLS port."""
    body = json.dumps({"jsonrpc": "2.0", "method": "call", "id": 1,
                       "params": {"db": db, "login": "admin", "password": "admin"}}).encode()
    port = st.ports["HTTPS_PORT" if tls else "HTTP_LOCAL_PORT"]
    r = edge.request(port, host, "/web/session/authenticate", method="POST", tls=tls, source="127.0.0.1",
                     context=unverified_tls() if tls else None, body=body,
                     headers={"Content-Type": "application/json"})
    assert r.status == 200, (host, r.status, r.body[:300])
    return json.loads(r.body)


def test_tenants_by_subdomain_see_only_their_own_database(tenants: Stack, drill):
    for tls in (False, True):
        for tenant in TENANTS:
            host = f"{tenant}.{DOMAIN}"
            own = authenticate_as(tenants, host, tenant, tls)
            assert own.get("result", {}).get("db") == tenant and own["result"]["uid"] == 2, own
            for other in (*(t for t in TENANTS if t != tenant), "loomworks"):
                foreign = authenticate_as(tenants, host, other, tls)
                assert "result" not in foreign, (host, other, foreign)
                assert "Database not found" in json.dumps(foreign["error"]), foreign
        for db in (*TENANTS, "loomworks"):
            nosuch = authenticate_as(tenants, f"nosuch.{DOMAIN}", db, tls)
            assert "result" not in nosuch and "Database not found" in json.dumps(nosuch["error"]), nosuch
    drill("security: tenants isolated by dbfilter (stack with DB_NAME= and DBFILTER=^%d$)",
          f"{' and '.join(f'{t}.{DOMAIN}' for t in TENANTS)} each log in to their own database only, "
          f"on the local port and on TLS; nosuch.{DOMAIN} gets no database")
