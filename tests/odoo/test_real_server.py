"""A real odoo-bin (``--load=base,web,loomworks_health``), each test on a private cluster holding a
copy of the health database: the states come from PostgreSQL itself, nothing in Odoo is patched."""

from __future__ import annotations

import psycopg2
import pytest
import requests

from tests.support.odoo import DB_NAME, ODOO_ROLE, SERVER_WIDE_HEALTH, tail
from tests.support.wait import wait_for

pytestmark = pytest.mark.odoo

LOAD = f"--load={SERVER_WIDE_HEALTH}"


def get(server, path: str = "/web/health") -> requests.Response:
    # a generous client timeout: a health call that blocks on the registry fails the test
    return requests.get(server.url(path), timeout=20)


def assert_fail(response: requests.Response, code: str) -> None:
    assert response.status_code == 503, response.text
    body = response.json()
    db = body["checks"]["database"]
    assert (body["status"], body["reason"]) == ("fail", code), body
    assert db == {"status": "fail", "error": code, "duration_ms": db["duration_ms"]}, body


def assert_pass(response: requests.Response) -> None:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == body["checks"]["database"]["status"] == "pass", body


def test_postgres_stop_flips_readiness_and_back_without_restart(private_health_db, odoo_server) -> None:
    cluster = private_health_db
    server = odoo_server(cluster, LOAD, "-d", DB_NAME)
    server.wait_http("/web/health", 200)
    assert_pass(get(server))
    pid = server.pid

    cluster.stop("fast")
    assert_fail(get(server), "unreachable")  # the very next request
    live = get(server, "/web/health/live")
    assert live.status_code == 200 and live.json() == {"status": "pass"}

    cluster.start()
    assert_pass(get(server))  # the very next request, same process
    assert server.running() and server.pid == pid, tail(server.log_path)


def _waiting_on_lock(cluster) -> bool:
    return int(cluster.psql(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"  # noqa: S608 - constant
        f" AND datname = '{DB_NAME}' AND application_name LIKE 'odoo-%'"
    )) > 0


def test_starting_while_registry_is_upgrading(private_health_db, odoo_server) -> None:
    """``-u`` at start-up, with the load held on a table lock: 503 starting at once, then 200."""
    cluster = private_health_db
    locker = psycopg2.connect(cluster.dsn.replace("dbname=postgres", f"dbname={DB_NAME}"))
    try:
        with locker.cursor() as cur:
            cur.execute("LOCK TABLE ir_module_module IN ACCESS EXCLUSIVE MODE")
        server = odoo_server(cluster, LOAD, "-d", DB_NAME, "-u", "loomworks_health")
        server.wait_http("/web/health/live", 200)
        wait_for(lambda: _waiting_on_lock(cluster), 60, "Odoo's registry load to wait on the table lock")
        for _ in range(10):
            assert_fail(get(server), "starting")
        assert _waiting_on_lock(cluster), "the registry load finished while the lock was held"
    finally:
        locker.rollback()
        locker.close()
    server.wait_http("/web/health", 200)
    assert_pass(get(server))


def test_failed_registry_load_is_not_healthy_and_recovers(private_health_db, odoo_server) -> None:
    """The registry load fails (privilege revoked): Odoo would serve its no-database mode with 200."""
    cluster = private_health_db
    cluster.psql(f"REVOKE ALL ON ir_module_module FROM {ODOO_ROLE}", db=DB_NAME)
    server = odoo_server(cluster, LOAD, "-d", DB_NAME)
    server.wait_http("/web/health/live", 200)
    wait_for(lambda: "Failed to initialize database" in server.log(), 120, "the preload to fail")
    assert_fail(get(server), "registry_failed")
    pid = server.pid

    cluster.psql(f"GRANT ALL ON ir_module_module TO {ODOO_ROLE}", db=DB_NAME)
    # the health check reloads the registry in the background, as the first request would
    server.wait_http("/web/health", 200)
    assert_pass(get(server))
    assert server.pid == pid
