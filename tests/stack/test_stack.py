"""The whole stack with the real images: health, ordering, routing (websocket bus notifications
included) and persistence. The test addon (lwtest_slow) is mounted for its bus route."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from contextlib import closing
from urllib.parse import urlsplit

import pytest
import requests
import urllib3

from tests.support import bus
from tests.support.compose import SERVICES, TEST_ADDON, EventRecorder, Stack, dev_secret
from tests.support.nginx import unverified_tls, ws_connect
from tests.support.rpc import call_kw, jsonrpc

pytestmark = [pytest.mark.docker, pytest.mark.odoo,
              pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")]
DOMAIN = "loomworks.localhost"
DB = "loomworks"


@pytest.fixture(scope="module")
def stack(stack_tag: str, docker_client) -> Iterator[Stack]:
    st = Stack(files=("docker-compose.yml", TEST_ADDON), tag=stack_tag)
    recorder = EventRecorder(docker_client, st.project)
    st.recorder = recorder  # type: ignore[attr-defined]
    try:
        yield st.start()
    finally:
        recorder.stop()
        st.destroy()


def test_all_four_healthy_and_only_nginx_published(stack: Stack):
    for service in SERVICES:
        assert stack.health(service) == "healthy", service
        bindings = stack.inspect(service)["HostConfig"]["PortBindings"] or {}
        if service == "nginx":
            assert {b[0]["HostIp"] for b in bindings.values()} == {"127.0.0.1"}
        else:
            assert not bindings, f"{service} publishes {bindings}"


def test_local_port_serves_health_and_the_login_page(stack: Stack):
    r = requests.get(stack.url("/web/health"), timeout=10)
    assert r.status_code == 200, r.text
    r = requests.get(stack.url("/"), timeout=30)
    assert r.status_code == 200
    assert urlsplit(r.url).path == "/web/login", r.url
    assert 'name="login"' in r.text and 'name="password"' in r.text


def test_https_through_nginx_and_http_redirect(stack: Stack):
    # SNI and Host both name the domain; the certificate is the generated self-signed one.
    pool = urllib3.HTTPSConnectionPool("127.0.0.1", stack.ports["HTTPS_PORT"], server_hostname=DOMAIN,
                                       cert_reqs="CERT_NONE", assert_hostname=False, timeout=10)
    r = pool.request("GET", "/web/health", headers={"Host": DOMAIN}, retries=False)
    assert r.status == 200, r.data[:500]
    assert "max-age=" in r.headers.get("Strict-Transport-Security", "")
    r = requests.get(f"http://127.0.0.1:{stack.ports['HTTP_PORT']}/web/health", headers={"Host": DOMAIN},
                     allow_redirects=False, timeout=10)
    assert r.status_code == 308 and r.headers["Location"].startswith(f"https://{DOMAIN}")


@pytest.mark.parametrize("listener", ["local", "tls"])
def test_websocket_delivers_bus_notifications_through_nginx(stack: Stack, listener: str):
    """A websocket client subscribed like the web client receives a notification the server
    sends through the real bus (NOTIFY imbus -> the websocket worker, Odoo's gevent port 8072,
    where nginx routes /websocket: prefork Odoo's 8069 answers it with a 500)."""
    tls = {"context": unverified_tls()} if listener == "tls" else {}
    port, host = (stack.ports["HTTPS_PORT"], DOMAIN) if tls else (stack.ports["HTTP_LOCAL_PORT"], "127.0.0.1")
    ws = ws_connect(port, host, bus.WS_PATH, source="127.0.0.1", **tls)

    def send(channel: str, token: str) -> None:
        r = requests.get(stack.url(bus.send_path(channel, token)), timeout=30)
        assert r.status_code == 200 and r.text == f"sent {token}", (r.status_code, r.text[:300])

    with closing(ws):
        assert ws.getstatus() == 101
        bus.round_trip(ws, send)


def test_no_secret_in_inspect_or_logs(stack: Stack):
    values = [dev_secret(n) for n in ("postgres_password", "db_password", "odoo_admin_passwd",
                                      "redis_password")]
    texts = {s: json.dumps(stack.inspect(s)) for s in SERVICES} | {"logs": stack.logs(tail=100000)}
    for where, text in texts.items():
        for v in values:
            assert v not in text, where


def first(times: list[int], what: str) -> int:
    assert times, f"no event: {what}"
    return min(times)


def assert_ordered(st: Stack, since_ns: int) -> None:
    rec = st.recorder  # type: ignore[attr-defined]
    pg_healthy = first(rec.times("postgres", "health_status: healthy", since_ns), "postgres healthy")
    redis_healthy = first(rec.times("redis", "health_status: healthy", since_ns), "redis healthy")
    odoo_start = first(rec.times("odoo", "start", since_ns), "odoo start")
    odoo_healthy = first(rec.times("odoo", "health_status: healthy", since_ns), "odoo healthy")
    nginx_start = first(rec.times("nginx", "start", since_ns), "nginx start")
    assert pg_healthy < odoo_start, "odoo started before postgres was healthy"
    assert redis_healthy < odoo_start, "odoo started before redis was healthy"
    assert odoo_healthy < nginx_start, "nginx started before odoo was healthy"


def test_start_order_follows_health(stack: Stack):
    assert_ordered(stack, 0)
    # The containers' own StartedAt agrees with the events.
    started = {s: stack.inspect(s)["State"]["StartedAt"] for s in SERVICES}
    assert started["postgres"] < started["odoo"] < started["nginx"]


def test_data_sessions_filestore_and_wal_survive_down_and_up(stack: Stack):
    http = stack.login(DB)
    cookie = http.cookies["session_id"]
    partner_name = f"Persistence Check {time.time_ns()}"
    partner_id = call_kw(http, stack.url(), "res.partner", "create", {"name": partner_name})
    payload = b"loomworks filestore check\n" * 100
    att_id = call_kw(http, stack.url(), "ir.attachment", "create", {
        "name": "persist.txt", "datas": base64.b64encode(payload).decode(), "res_model": "res.partner",
        "res_id": partner_id})
    [att] = call_kw(http, stack.url(), "ir.attachment", "read", [att_id], ["store_fname", "file_size"])
    assert att["store_fname"] and att["file_size"] == len(payload)
    filestore = f"/var/lib/odoo/filestore/{DB}/{att['store_fname']}"
    assert stack.exec("odoo", "test", "-s", filestore, check=False).returncode == 0

    # A WAL segment with the new rows, switched out and archived.
    stack.psql("CREATE TABLE IF NOT EXISTS lw_wal_probe AS SELECT 1 AS x", db=DB)
    segment = stack.archive_wal(timeout=60)

    stack.down()  # no -v: volumes stay
    assert not stack.run("ps", "-q").stdout.strip()
    since = time.time_ns()
    stack.start(timeout=600)  # existing volumes
    assert_ordered(stack, since)

    # The old session cookie is still valid (sessions live on odoo_data).
    again = requests.Session()
    again.cookies.set("session_id", cookie)
    info = jsonrpc(again, stack.url("/web/session/get_session_info"), {})
    assert info["uid"] and info["db"] == DB
    [partner] = call_kw(again, stack.url(), "res.partner", "read", [partner_id], ["name"])
    assert partner["name"] == partner_name
    [att] = call_kw(again, stack.url(), "ir.attachment", "read", [att_id], ["datas"])
    assert base64.b64decode(att["datas"]) == payload and stack.archived(segment)
    assert stack.exec("postgres", "gzip", "-t", f"/wal_archive/{segment}.gz", check=False).returncode == 0
