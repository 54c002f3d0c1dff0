"""The project's nginx configuration, run by the real nginx binary on loopback.

nginx is started through nginx/entrypoint.sh (the image's own code) in front of
stand-in upstreams for Odoo's HTTP and websocket ports. Clients connect from
127.0.0.2; nginx reaches the upstreams from 127.0.0.1.
"""

from __future__ import annotations

import gzip
import http.client
import json
import shutil
import socket
import ssl
import subprocess
import warnings

import pytest

from tests.support.net import free_port
from tests.support.nginx import (
    CLIENT_ADDR,
    MB,
    REPO,
    NginxRun,
    Zeros,
    request,
    run_entrypoint,
    unverified_tls,
    ws_connect,
)
from tests.support.upstreams import HttpUpstream, WsEchoUpstream
from tests.support.wait import wait_for

pytestmark = pytest.mark.integration

TENANT = "acme.loomworks.app"
LIMIT_MESSAGE = "upload too large: the limit is 100 MB"


def last_seen(up: HttpUpstream, path: str) -> dict:
    matches = [s for s in up.seen if s["path"] == path]
    assert matches, f"upstream never received {path}"
    return matches[-1]


def assert_security_headers(resp, *, hsts: bool = True) -> None:
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
    if hsts:
        assert resp.headers["Strict-Transport-Security"] == "max-age=63072000"
    else:
        assert "Strict-Transport-Security" not in resp.headers


# --- configuration and TLS ------------------------------------------------------


@pytest.mark.parametrize("allow", ["false", "true"])
def test_rendered_configuration_passes_nginx_t(make_nginx, allow: str) -> None:
    run = make_nginx(ALLOW_DATABASE_MANAGER=allow)
    r = run_entrypoint(run.env, "check")
    assert r.returncode == 0, r.stderr
    conf = (run.root / "conf" / "nginx.conf").read_text()
    assert "${" not in conf
    assert r"\.loomworks\.app$" in conf  # the domain is escaped in the tenant regex
    # nginx -t on the rendered files, independently of the entrypoint's own check
    t = subprocess.run([run.env["NGINX_BIN"], "-t", "-c", str(run.root / "conf" / "nginx.conf")],
                                     capture_output=True, text=True, check=False)
    assert t.returncode == 0 and "test is successful" in t.stderr, t.stderr


def _tls_client(version: ssl.TLSVersion) -> ssl.SSLContext:
    """A client able to speak ``version`` only (legacy versions re-enabled on our side,
    so a failure is the server's refusal, not the client's)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx = unverified_tls()
        ctx.set_ciphers("ALL:@SECLEVEL=0")
        ctx.minimum_version = version
        ctx.maximum_version = version
    return ctx


@pytest.mark.parametrize("version", ["TLSv1", "TLSv1_1"])
def test_legacy_tls_is_refused_by_the_server(nginx: NginxRun, version: str) -> None:
    ctx = _tls_client(getattr(ssl.TLSVersion, version))
    with pytest.raises(ssl.SSLError) as err, socket.create_connection(("127.0.0.1", nginx.https_port)) as raw:
        ctx.wrap_socket(raw, server_hostname=TENANT)
    # an alert FROM the server: the client did offer the version
    assert err.value.reason == "TLSV1_ALERT_PROTOCOL_VERSION", err.value


@pytest.mark.parametrize("version", ["TLSv1_2", "TLSv1_3"])
def test_modern_tls_is_accepted_with_an_aead_ecdhe_suite(nginx: NginxRun, version: str) -> None:
    ctx = nginx.tls_context()  # verifies the chain and the name against the generated cert
    ctx.minimum_version = ctx.maximum_version = getattr(ssl.TLSVersion, version)
    with socket.create_connection(("127.0.0.1", nginx.https_port)) as raw, \
            ctx.wrap_socket(raw, server_hostname=TENANT) as tls:
        assert tls.version() == version.replace("_", ".")
        name = tls.cipher()[0]
        if version == "TLSv1_2":
            assert name.startswith("ECDHE-") and ("GCM" in name or "CHACHA20" in name), name


def test_http2_is_offered_and_sessions_resume_from_the_cache_without_tickets(nginx: NginxRun) -> None:
    ctx = nginx.tls_context()
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2  # TLS 1.2: ID-based resumption is observable
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    with socket.create_connection(("127.0.0.1", nginx.https_port)) as raw, \
            ctx.wrap_socket(raw, server_hostname=TENANT) as tls:
        assert tls.selected_alpn_protocol() == "h2"
        session = tls.session
    assert session is not None and not session.has_ticket  # ssl_session_tickets off
    with socket.create_connection(("127.0.0.1", nginx.https_port)) as raw, \
            ctx.wrap_socket(raw, server_hostname=TENANT, session=session) as tls:
        assert tls.session_reused  # ssl_session_cache


def test_http2_request_reaches_odoo_with_the_public_host(nginx: NginxRun,
                                                         http_upstream: HttpUpstream) -> None:
    curl = shutil.which("curl")
    if not curl:
        pytest.skip("curl is needed for an HTTP/2 client")
    r = subprocess.run([curl, "-sS", "--http2", "--cacert", str(nginx.cert), "-o", "/dev/null",
                        "-w", "%{http_version} %{http_code}",
                        "--connect-to", f"{TENANT}:443:127.0.0.1:{nginx.https_port}",
                        f"https://{TENANT}/h2-probe"], capture_output=True, text=True, check=False)
    assert r.stdout == "2 200", r.stderr
    h = last_seen(http_upstream, "/h2-probe")["headers"]
    assert h["host"] == h["x-forwarded-host"] == TENANT  # :authority without a port
    assert h["x-forwarded-proto"] == "https"


def test_unknown_sni_and_missing_sni_are_refused_at_the_handshake(nginx: NginxRun) -> None:
    ctx = _tls_client(ssl.TLSVersion.TLSv1_3)
    for sni in ("evil.example", "a.b.loomworks.app", None):
        with pytest.raises(ssl.SSLError) as err, \
                socket.create_connection(("127.0.0.1", nginx.https_port)) as raw:
            ctx.wrap_socket(raw, server_hostname=sni)
        assert err.value.reason == "TLSV1_UNRECOGNIZED_NAME", (sni, err.value)


def test_unknown_host_on_a_known_sni_gets_421(nginx: NginxRun, http_upstream: HttpUpstream) -> None:
    class WrongHost(http.client.HTTPSConnection):
        def connect(self) -> None:
            sock = socket.create_connection(("127.0.0.1", self.port), 10, (CLIENT_ADDR, 0))
            self.sock = self._context.wrap_socket(sock, server_hostname=TENANT)

    conn = WrongHost("evil.example", nginx.https_port, context=nginx.tls_context())
    conn._context.check_hostname = False  # the certificate is for TENANT, the Host is not
    conn.request("GET", "/421-probe")
    assert conn.getresponse().status == 421
    conn.close()
    assert not [s for s in http_upstream.seen if s["path"] == "/421-probe"]


@pytest.mark.parametrize("host", ["evil.example", "a.b.loomworks.app", "-bad.loomworks.app",
                                  "loomworks.app.evil"])
def test_unknown_host_on_plain_http_is_dropped(nginx: NginxRun, host: str) -> None:
    for port in (nginx.http_port, nginx.local_port):
        with pytest.raises(http.client.RemoteDisconnected):  # 444: no response at all
            request(port, host, "/", tls=False)


# --- routing and forwarded headers -------------------------------------------------


@pytest.mark.parametrize("host", [TENANT, "bigco.loomworks.app", "loomworks.app"])
def test_host_reaches_odoo_http_port_with_forwarded_headers(nginx: NginxRun, http_upstream: HttpUpstream,
                                                            host: str) -> None:
    path = f"/web/login?probe={host}"
    resp = request(nginx.https_port, host, path, context=nginx.tls_context())
    assert resp.status == 200
    seen = last_seen(http_upstream, path)
    h = seen["headers"]
    assert h["host"] == f"{host}:{nginx.https_port}"
    assert h["x-forwarded-host"] == f"{host}:{nginx.https_port}"
    assert h["x-forwarded-proto"] == "https"
    assert h["x-forwarded-for"] == CLIENT_ADDR == h["x-real-ip"]
    assert seen["peer"] == "127.0.0.1"  # nginx itself, not the client
    assert_security_headers(resp)


def test_forged_forwarding_headers_do_not_reach_odoo(nginx: NginxRun, http_upstream: HttpUpstream) -> None:
    forged = {"X-Forwarded-For": "6.6.6.6", "X-Real-IP": "6.6.6.6", "Forwarded": "for=6.6.6.6",
              "X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "gopher", "X-Forwarded-Port": "1"}
    request(nginx.https_port, TENANT, "/forged", context=nginx.tls_context(), headers=forged)
    h = last_seen(http_upstream, "/forged")["headers"]
    assert h["x-forwarded-for"] == CLIENT_ADDR
    assert h["x-real-ip"] == CLIENT_ADDR
    assert h["x-forwarded-host"] == f"{TENANT}:{nginx.https_port}"
    assert h["x-forwarded-proto"] == "https"
    assert "6.6.6.6" not in json.dumps(h)
    assert "forwarded" not in h and "x-forwarded-port" not in h


def test_plain_http_redirects_with_308_except_health(nginx: NginxRun) -> None:
    for method in ("GET", "POST"):
        resp = request(nginx.http_port, TENANT, "/web?a=1", method=method, tls=False, body=b"x")
        assert resp.status == 308
        assert resp.headers["Location"] == f"https://{TENANT}/web?a=1"
    for host in (TENANT, "127.0.0.1", "anything.example"):
        resp = request(nginx.http_port, host, "/nginx-health", tls=False)
        assert (resp.status, resp.body) == (200, b"ok\n")


def test_redirect_names_the_public_https_port_when_not_443(make_nginx) -> None:
    run = make_nginx(HTTPS_PORT="8443").start()
    resp = request(run.http_port, TENANT, "/x", tls=False)
    assert (resp.status, resp.headers["Location"]) == (308, f"https://{TENANT}:8443/x")


def test_local_listener_proxies_without_redirect(nginx: NginxRun, http_upstream: HttpUpstream,
                                                 ws_upstream: WsEchoUpstream) -> None:
    for host in ("localhost", "127.0.0.1", TENANT):
        path = f"/web?local={host}"
        resp = request(nginx.local_port, host, path, tls=False, headers={"X-Forwarded-For": "6.6.6.6"})
        assert resp.status == 200
        h = last_seen(http_upstream, path)["headers"]
        assert h["host"] == f"{host}:{nginx.local_port}"
        assert h["x-forwarded-proto"] == "http"
        assert h["x-forwarded-for"] == CLIENT_ADDR
        assert_security_headers(resp, hsts=False)
    ws = ws_connect(nginx.local_port, "localhost", "/websocket")
    try:
        assert ws.getstatus() == 101 and ws.getheaders()["x-upstream"] == "ws"
        ws.send("hello-local")
        assert ws.recv() == "echo:hello-local"
    finally:
        ws.close()


# --- websockets --------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/websocket", "/longpolling", "/websocket?version=18.0-1"])
def test_websocket_upgrade_reaches_the_gevent_port(nginx: NginxRun, ws_upstream: WsEchoUpstream,
                                                   path: str) -> None:
    ws = ws_connect(nginx.https_port, TENANT, path, context=nginx.tls_context())
    try:
        assert ws.getstatus() == 101
        assert ws.getheaders()["x-upstream"] == "ws"  # only the websocket stand-in answers 101
        seen = json.loads(ws.getheaders()["x-seen"])
        assert seen["host"] == seen["x-forwarded-host"] == f"{TENANT}:{nginx.https_port}"
        assert seen["x-forwarded-for"] == seen["x-real-ip"] == CLIENT_ADDR
        assert seen["x-forwarded-proto"] == "https"
        for i in range(3):
            ws.send(f"ping {i}")
            assert ws.recv() == f"echo:ping {i}"
    finally:
        ws.close()


def test_plain_requests_do_not_go_to_the_gevent_port(nginx: NginxRun, ws_upstream: WsEchoUpstream) -> None:
    before = len(ws_upstream.seen)
    resp = request(nginx.https_port, TENANT, "/web/webclient/load", context=nginx.tls_context())
    assert resp.status == 200 and resp.json()["upstream"] == "http"
    assert len(ws_upstream.seen) == before


# --- uploads -----------------------------------------------------------------------


@pytest.mark.parametrize(("headers", "ctype"), [
    ({"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}, "text/html"),   # a browser
    ({"Accept": "application/json"}, "application/json"),                     # an API client
    ({"Accept": "*/*", "Content-Type": "application/json"}, "application/json"),  # Odoo's JSON-RPC
], ids=["browser", "accept-json", "json-rpc"])
def test_upload_over_100mb_gets_a_clear_413(nginx: NginxRun, http_upstream: HttpUpstream, headers: dict,
                                            ctype: str) -> None:
    size = 100 * MB + 1
    path = f"/web/binary/upload_attachment?too-big={ctype}"
    resp = request(nginx.https_port, TENANT, path, method="POST", context=nginx.tls_context(),
                   body=Zeros(size), headers={"Content-Length": str(size), **headers})
    assert resp.status == 413
    assert resp.headers["Content-Type"] == ctype
    if ctype == "text/html":
        assert b"<p>Upload too large: the limit is 100 MB.</p>" in resp.body
    else:  # JSON-RPC's error shape: Odoo's web client shows error.message
        error = json.loads(resp.body)["error"]
        assert (error["code"], error["message"]) == (413, LIMIT_MESSAGE)
        assert error["data"]["limit_bytes"] == 100 * MB
    assert len(resp.body) < 400
    assert_security_headers(resp)
    assert not [s for s in http_upstream.seen if s["path"] == path]


# --- Odoo's session cookie ------------------------------------------------------------


def test_session_cookie_is_secure_and_samesite_over_tls_only(nginx: NginxRun, http_upstream: HttpUpstream,
                                                             ) -> None:
    """The stand-in answers `Set-Cookie: session_id=lwtest; Path=/; HttpOnly` (cookie=1)."""
    tls = request(nginx.https_port, TENANT, "/web/login?cookie=1", context=nginx.tls_context())
    assert tls.headers.get_all("Set-Cookie") == ["session_id=lwtest; Path=/; HttpOnly; Secure; SameSite=Lax"]
    # the plain local listener keeps it as Odoo sent it: a Secure cookie never comes back over http
    local = request(nginx.local_port, "localhost", "/web/login?cookie=1", tls=False)
    assert local.headers.get_all("Set-Cookie") == ["session_id=lwtest; Path=/; HttpOnly"]


def test_upload_of_99mb_reaches_odoo(nginx: NginxRun, http_upstream: HttpUpstream) -> None:
    size = 99 * MB
    resp = request(nginx.https_port, TENANT, "/web/binary/upload_attachment?ok", method="POST",
                   context=nginx.tls_context(), body=Zeros(size), headers={"Content-Length": str(size)})
    assert resp.status == 200
    assert last_seen(http_upstream, "/web/binary/upload_attachment?ok")["body_len"] == size


# --- database manager, caching, compression, logging --------------------------------

DB_MANAGER_PATHS = ["/web/database/manager", "/web/database/selector", "/web/database/list",
                    "/web/database/backup", "/xmlrpc/2/db", "/xmlrpc/db"]


def test_database_manager_is_blocked_by_default(nginx: NginxRun, http_upstream: HttpUpstream) -> None:
    for path in DB_MANAGER_PATHS:
        resp = request(nginx.https_port, TENANT, path, method="POST", context=nginx.tls_context(), body=b"{}")
        assert resp.status == 404, path
        assert_security_headers(resp)
        assert not [s for s in http_upstream.seen if s["path"] == path], path
    # neighbours are not caught by the block
    assert request(nginx.https_port, TENANT, "/web/databases", context=nginx.tls_context()).status == 200


def test_database_manager_switch_allows_it(make_nginx, http_upstream: HttpUpstream,
                                           ws_upstream: WsEchoUpstream) -> None:
    run = make_nginx(ALLOW_DATABASE_MANAGER="true", ODOO_HTTP_PORT=str(http_upstream.port),
                     ODOO_WS_PORT=str(ws_upstream.port)).start()
    for path in DB_MANAGER_PATHS:
        resp = request(run.https_port, TENANT, path, context=run.tls_context())
        assert resp.status == 200, path
        assert last_seen(http_upstream, path)["headers"]["host"] == f"{TENANT}:{run.https_port}"


@pytest.mark.parametrize(("path", "cache_control"), [
    ("/web/assets/1a2b3c4/web.assets_web.min.js", "max-age=31536000"),
    ("/web/static/img/favicon.ico", "max-age=604800"),
    ("/sale/static/src/x.js", "max-age=604800"),
    ("/web/assets/debug/web.assets_web.js", None),  # debug bundles: Odoo decides
    ("/web/assets/1a2b3c4/web.assets_web.min.js?redirect=1", None),  # redirects are not cached
    ("/web/login", None),
])
def test_long_caching_only_for_successful_assets(nginx: NginxRun, path: str,
                                                 cache_control: str | None) -> None:
    # twice: the second answer of a cached asset comes from nginx's static cache
    # (no upstream status) and must carry the same headers
    for _ in range(2):
        resp = request(nginx.https_port, TENANT, path, context=nginx.tls_context())
        assert resp.headers.get("Cache-Control") == cache_control
        assert ("Expires" in resp.headers) == (cache_control is not None)
        assert_security_headers(resp)  # "expires" did not drop the server-level headers


def test_text_responses_are_gzipped(nginx: NginxRun) -> None:
    resp = request(nginx.https_port, TENANT, "/gz", context=nginx.tls_context(),
                   headers={"Accept-Encoding": "gzip"})
    assert resp.headers["Content-Encoding"] == "gzip"
    assert json.loads(gzip.decompress(resp.body).split(b"\n")[0])["path"] == "/gz"


def test_access_log_has_client_address_and_upstream_timing(nginx: NginxRun) -> None:
    request(nginx.https_port, TENANT, "/logged-request", context=nginx.tls_context())

    def logged() -> str | None:
        return next((ln for ln in nginx.log().splitlines() if "/logged-request" in ln), None)

    line = wait_for(logged, 10, "the access log line")
    assert line.startswith(f"{CLIENT_ADDR} \"{TENANT}\"")
    assert " 200 " in line
    for field in ("rt=", "urt=", "uct=", "us=200", "cs=-"):  # cs: not a cached location
        assert field in line, line


def test_upstream_down_gives_a_502_page_with_headers(make_nginx) -> None:
    run = make_nginx(ODOO_HTTP_PORT=str(free_port())).start()
    resp = request(run.https_port, TENANT, "/web", context=run.tls_context())
    assert resp.status == 502
    assert b"Odoo is not answering" in resp.body
    assert_security_headers(resp)


def test_healthcheck_script_probes_the_plain_listener(nginx: NginxRun) -> None:
    def probe(port: int) -> subprocess.CompletedProcess:
        return subprocess.run([str(REPO / "nginx" / "healthcheck.sh")], capture_output=True, text=True,
                              env={"NGINX_HTTP_LISTEN": f"127.0.0.1:{port}", "PATH": "/usr/bin:/bin",
                                   "LOOMWORKS_LIB": nginx.env["LOOMWORKS_LIB"]},
                              check=False)

    ok = probe(nginx.http_port)
    assert ok.returncode == 0, ok.stderr
    bad = probe(free_port())
    assert bad.returncode != 0
    assert bad.stderr.count("\n") == 1, bad.stderr
    assert bad.stderr.startswith("healthcheck: error: GET /nginx-health"), bad.stderr
