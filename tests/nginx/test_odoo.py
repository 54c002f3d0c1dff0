"""nginx in front of a real Odoo 18: tenant routing by subdomain, client IPs, bus
notifications over the websocket, and the static cache.

Odoo runs on loopback with ``--proxy-mode --db-filter=^%d$`` and two
databases, ``acme`` and ``bigco`` (with the test addon lwtest_slow, for its bus route);
nginx is the project's configuration run by nginx/entrypoint.sh with the host's nginx.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import bus
from tests.support.containers import SLOW_ADDON
from tests.support.nginx import CLIENT_ADDR, NginxRun, request, ws_connect
from tests.support.odoo import ADDONS, Odoo
from tests.support.pg import PgCluster
from tests.support.wait import wait_for

pytestmark = [pytest.mark.odoo, pytest.mark.integration]

DOMAIN = "loomworks.app"


@pytest.fixture(scope="module")
def odoo(odoo_tree: Path, pg_cluster: PgCluster) -> Iterator[Odoo]:
    addons_path = f"{odoo_tree / 'addons'},{ADDONS},{SLOW_ADDON.parent}"
    server = Odoo(odoo_tree, pg_cluster, options={"addons_path": addons_path})
    try:
        for db in ("acme", "bigco"):
            pg_cluster.psql(f'DROP DATABASE IF EXISTS "{db}"')
        server.init_db("acme", modules=f"base,{SLOW_ADDON.name}")
        server.clone_db("bigco", template="acme")
        server.start(dbfilter="^%d$", proxy_mode=True, workers=0).wait_http("/web/health")
        yield server
    finally:
        server.destroy()
        for db in ("acme", "bigco"):
            pg_cluster.psql(f'DROP DATABASE IF EXISTS "{db}"')


@pytest.fixture(scope="module")
def edge(nginx_binary: str, odoo: Odoo) -> Iterator[NginxRun]:
    # threaded Odoo serves /websocket on its HTTP port
    run = NginxRun.create(nginx_binary, LOOMWORKS_DOMAIN=DOMAIN, ODOO_HTTP_PORT=str(odoo.port),
                          ODOO_WS_PORT=str(odoo.port))
    yield run.start()
    run.destroy()


def authenticate(edge: NginxRun, host: str, db: str) -> dict:
    payload = {"jsonrpc": "2.0", "method": "call", "id": 1,
               "params": {"db": db, "login": "admin", "password": "admin"}}
    resp = request(edge.https_port, host, "/web/session/authenticate", method="POST",
                   context=edge.tls_context(), body=json.dumps(payload).encode(),
                   headers={"Content-Type": "application/json"})
    assert resp.status == 200, resp.body[:500]
    return json.loads(resp.body)


@pytest.mark.parametrize(("tenant", "other"), [("acme", "bigco"), ("bigco", "acme")])
def test_each_subdomain_sees_only_its_own_database(edge: NginxRun, tenant: str, other: str) -> None:
    host = f"{tenant}.{DOMAIN}"
    own = authenticate(edge, host, tenant)
    assert own.get("result", {}).get("db") == tenant, own
    assert own["result"]["uid"] == 2  # admin
    foreign = authenticate(edge, host, other)
    assert "result" not in foreign
    assert "Database not found" in json.dumps(foreign["error"]), foreign
    login = request(edge.https_port, host, "/web/login", context=edge.tls_context())
    assert login.status == 200 and b"oe_login_form" in login.body


def test_unknown_tenant_gets_no_database(edge: NginxRun) -> None:
    resp = authenticate(edge, f"nosuch.{DOMAIN}", "acme")
    assert "Database not found" in json.dumps(resp.get("error")), resp


def test_odoo_logs_the_client_address_nginx_saw(edge: NginxRun, odoo: Odoo) -> None:
    probe = uuid.uuid4().hex
    resp = request(edge.https_port, f"acme.{DOMAIN}", f"/web/login?probe={probe}", context=edge.tls_context(),
                   headers={"X-Forwarded-For": "6.6.6.6", "X-Real-IP": "6.6.6.6"})
    assert resp.status == 200

    def logged() -> str | None:
        return next((ln for ln in odoo.log().splitlines() if probe in ln), None)

    line = wait_for(logged, 15, "Odoo's request log line")
    assert re.search(rf"werkzeug: {re.escape(CLIENT_ADDR)} ", line), line
    assert "6.6.6.6" not in line and " 127.0.0.1 " not in line, line


def test_odoo_sees_the_public_scheme_and_host(edge: NginxRun, pg_cluster: PgCluster) -> None:
    # An admin login records the URL Odoo believes it is served at (web.base.url),
    # built from X-Forwarded-Proto and X-Forwarded-Host by proxy_mode.
    assert authenticate(edge, f"acme.{DOMAIN}", "acme").get("result", {}).get("uid") == 2
    base = pg_cluster.psql("SELECT value FROM ir_config_parameter WHERE key = 'web.base.url'", db="acme")
    assert base == f"https://acme.{DOMAIN}:{edge.https_port}"


@pytest.mark.parametrize(("tenant", "other"), [("acme", "bigco"), ("bigco", "acme")])
def test_real_odoo_delivers_bus_notifications_per_tenant_through_nginx(edge: NginxRun, tenant: str,
                                                                       other: str) -> None:
    """A websocket on a tenant's subdomain (TLS) receives what the bus sends in its database.
    A notification sent on the same channel through the other tenant's subdomain lands in the
    other database: it is not among what the socket received before a later one of its own."""
    ws = ws_connect(edge.https_port, f"{tenant}.{DOMAIN}", bus.WS_PATH, context=edge.tls_context())

    def send_in(db: str, channel: str, token: str) -> None:
        r = request(edge.https_port, f"{db}.{DOMAIN}", bus.send_path(channel, token),
                    context=edge.tls_context())
        assert r.status == 200 and r.body == f"sent {token}".encode(), (r.status, r.body[:300])

    try:
        assert ws.getstatus() == 101, ws.getheaders()
        assert ws.getheaders()["upgrade"].lower() == "websocket"
        last = bus.round_trip(ws, lambda channel, token: send_in(tenant, channel, token))
        channel, token = last["message"]["payload"]["channel"], last["message"]["payload"]["token"]
        send_in(other, channel, f"foreign-{token}")
        send_in(tenant, channel, f"own-{token}")
        seen: list[dict] = []
        assert bus.receive(ws, f"own-{token}", 30, seen)["message"] == bus.expected(channel, f"own-{token}")
        assert not [n for n in seen if "foreign" in json.dumps(n)], seen
    finally:
        ws.close()


def odoo_requests(odoo: Odoo, uri: str) -> int:
    return sum(1 for ln in odoo.log().splitlines() if f'"GET {uri} HTTP' in ln)


def test_real_asset_bundles_and_static_files_are_cached_per_tenant(edge: NginxRun, odoo: Odoo) -> None:
    """Odoo's real answers are storable: a session's second request for a bundle or a
    static file is answered by nginx; each tenant's bundle is fetched from Odoo once."""
    for tenant in ("acme", "bigco"):
        host = f"{tenant}.{DOMAIN}"
        login = request(edge.https_port, host, "/web/login", context=edge.tls_context())
        cookie = login.headers["Set-Cookie"].split(";", 1)[0]
        assert cookie.startswith("session_id=")
        bundle = re.search(rb'src="(/web/assets/[0-9a-f]+/web\.assets_frontend_minimal\.min\.js)"',
                           login.body)
        assert bundle, login.body[:2000]
        for uri in (bundle.group(1).decode(), "/web/static/img/favicon.ico"):
            answers = [request(edge.https_port, host, uri, context=edge.tls_context(),
                               headers={"Cookie": cookie}) for _ in range(2)]
            assert [a.status for a in answers] == [200, 200]
            assert answers[0].body == answers[1].body and answers[0].body
            assert "Set-Cookie" not in answers[1].headers
            assert answers[0].headers["Cache-Control"] == answers[1].headers["Cache-Control"]
            statuses = edge.cache_statuses(uri, 2, host=host, timeout=15)
            assert statuses[-1] == "HIT", statuses
            # the favicon is the same file for both tenants, yet each Host has its own entry
            assert statuses.count("MISS") == 1, statuses
    # Odoo answered each tenant's first request only
    wait_for(lambda: odoo_requests(odoo, "/web/static/img/favicon.ico") >= 2, 15, "Odoo's log lines")
    assert odoo_requests(odoo, "/web/static/img/favicon.ico") == 2


def test_real_asset_answer_that_sets_a_cookie_is_not_cached(edge: NginxRun) -> None:
    """A client without a session gets a new session cookie with the bundle: never stored."""
    host = f"acme.{DOMAIN}"
    login = request(edge.https_port, host, "/web/login", context=edge.tls_context())
    uri = re.search(rb'href="(/web/assets/[0-9a-f]+/web\.assets_frontend\.min\.css)"', login.body)
    assert uri, login.body[:2000]
    path = uri.group(1).decode() + "?lwtest-cookieless"
    for _ in range(2):
        resp = request(edge.https_port, host, path, context=edge.tls_context())
        assert resp.status == 200 and resp.headers["Set-Cookie"].startswith("session_id=")
    assert "HIT" not in edge.cache_statuses(path, 2, host=host, timeout=15)


def test_session_cookie_is_secure_over_tls_and_login_works_on_both_listeners(edge: NginxRun) -> None:
    """Real Odoo: over HTTPS its session cookie gets Secure and SameSite=Lax (nginx); on the
    plain local listener it does not, and the session it names is logged in there."""
    host = f"acme.{DOMAIN}"
    login = request(edge.https_port, host, "/web/login", context=edge.tls_context())
    (cookie,) = login.headers.get_all("Set-Cookie")
    attributes = [a.strip() for a in cookie.split(";")]
    assert attributes[0].startswith("session_id=") and "Secure" in attributes
    assert "SameSite=Lax" in attributes and "HttpOnly" in attributes
    payload = {"jsonrpc": "2.0", "method": "call", "id": 1,
               "params": {"db": "acme", "login": "admin", "password": "admin"}}
    auth = request(edge.local_port, host, "/web/session/authenticate", method="POST", tls=False,
                   body=json.dumps(payload).encode(), headers={"Content-Type": "application/json"})
    (plain,) = auth.headers.get_all("Set-Cookie")
    assert "Secure" not in plain and "SameSite" not in plain, plain
    info = request(edge.local_port, host, "/web/session/get_session_info", method="POST", tls=False,
                   body=b'{"jsonrpc": "2.0", "method": "call", "params": {}}',
                   headers={"Content-Type": "application/json", "Cookie": plain.split(";", 1)[0]})
    assert json.loads(info.body)["result"]["uid"] == 2


@pytest.mark.parametrize("path", ["/web/login", "/web/static/img/favicon.ico"])
def test_x_content_type_options_is_sent_once(edge: NginxRun, path: str) -> None:
    """Odoo sets it on static files (and some others); nginx sets it on everything: once."""
    resp = request(edge.https_port, f"acme.{DOMAIN}", path, context=edge.tls_context())
    assert resp.status == 200
    assert resp.headers.get_all("X-Content-Type-Options") == ["nosniff"]
