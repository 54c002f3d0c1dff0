# SPDX-License-Identifier: LGPL-3.0-or-later
"""HTTP tests of /web/health and /web/health/live against the real test database.

Run with pytest-odoo and ``--odoo-http`` (tests/odoo/test_addon_suite.py does it)
or with ``odoo-bin --test-tags /loomworks_health``. Failures are produced for
real: the check is pointed at a closed port, at a socket that never answers, or
given a wrong password through the Odoo config it reads. The check itself is
never patched.
"""

import contextlib
import logging
import socket
from concurrent.futures import ThreadPoolExecutor
from unittest.mock import patch

import odoo.http
import psycopg2
import requests
from odoo import sql_db
from odoo.addons import loomworks_health
from odoo.addons.loomworks_health.probe.pool import IDLE_MAX
from odoo.modules.module import get_manifest
from odoo.tests import HttpCase, tagged
from odoo.tools import config

SECRET_PASSWORD = "not-the-password-3f1c"  # noqa: S105 - a wrong password the body must not echo


def _closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def _silent_listener():
    """A loopback port that accepts TCP connections but never speaks PostgreSQL."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        yield s.getsockname()[1]


@tagged("post_install", "-at_install")
class TestHealth(HttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # Under pytest-odoo the test module imports the addon before Odoo loads it, and Odoo
        # skips post_load for an already imported module: run the manifest's hook as Odoo
        # does (idempotent; under odoo-bin it has run already).
        getattr(loomworks_health, get_manifest("loomworks_health")["post_load"])()

    def _get(self, path="/web/health"):
        return self.url_open(path, timeout=30, allow_redirects=False)

    def _backends(self):
        """(all client backends on this database, health backends), seen from a separate connection."""
        dbname, info = sql_db.connection_info_for(self.env.cr.dbname)
        conn = psycopg2.connect(**info)
        try:
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT count(*), count(*) FILTER (WHERE application_name LIKE 'odoo-health-%%')"
                    " FROM pg_stat_activity WHERE backend_type = 'client backend'"
                    " AND datname = %s AND pid <> pg_backend_pid()",
                    (dbname,),
                )
                return cur.fetchone()
        finally:
            conn.close()

    def _assert_fail(self, response, code):
        self.assertEqual(response.status_code, 503, response.text)
        body = response.json()
        self.assertEqual(body["status"], "fail")
        self.assertEqual(body["reason"], code)
        self.assertEqual(body["checks"]["database"]["status"], "fail")
        self.assertEqual(body["checks"]["database"]["error"], code)
        self.assertIsInstance(body["checks"]["database"]["duration_ms"], (int, float))
        return body

    def test_healthy_database_passes(self):
        response = self._get()
        self.assertEqual(response.status_code, 200, response.text)
        body = response.json()
        self.assertEqual(set(body), {"status", "checks"})
        self.assertEqual(body["status"], "pass")
        check = body["checks"]["database"]
        self.assertEqual(check["status"], "pass")
        self.assertNotIn("error", check)
        self.assertGreaterEqual(check["duration_ms"], 0)

    def test_headers(self):
        response = self._get()
        self.assertEqual(response.headers["Content-Type"].split(";")[0], "application/json")
        self.assertEqual(response.headers["Cache-Control"], "no-store")
        self.assertNotIn("Set-Cookie", response.headers)

    def test_unreachable_database_fails(self):
        port = _closed_port()
        with patch.dict(config.options, {"db_host": "127.0.0.1", "db_port": port}):
            response = self._get()
        body = self._assert_fail(response, "unreachable")
        self.assertNotIn(str(port), response.text)
        self.assertNotIn("127.0.0.1", response.text)
        self.assertNotIn("Traceback", response.text)
        self.assertEqual(set(body), {"status", "reason", "checks"})
        # and back to pass once the config points at the real server again
        self.assertEqual(self._get().status_code, 200)

    def test_silent_server_times_out(self):
        with _silent_listener() as port, patch.dict(
            config.options, {"db_host": "127.0.0.1", "db_port": port, "health_connect_timeout": "0.5"}
        ):
            response = self._get()
        body = self._assert_fail(response, "timeout")
        # the client-side deadline, not libpq's 2 s minimum, ended the attempt
        self.assertGreaterEqual(body["checks"]["database"]["duration_ms"], 500)

    def test_rejected_login_fails_without_leaking_secrets(self):
        with patch.dict(config.options, {"db_password": SECRET_PASSWORD}):
            response = self._get()
        self._assert_fail(response, "rejected")
        self.assertNotIn(SECRET_PASSWORD, response.text)

    def test_no_connection_leak(self):
        self._get()  # warm up: at most IDLE_MAX kept connections
        before, _ = self._backends()
        for _ in range(1000):
            self.assertEqual(self._get().status_code, 200)
        after, kept = self._backends()
        self.assertLessEqual(kept, IDLE_MAX)
        self.assertLessEqual(after, before + IDLE_MAX, f"backends {before} -> {after}")

    def test_concurrent_calls_share_one_connection(self):
        self._get()
        before, _ = self._backends()
        url = self.base_url() + "/web/health"
        with ThreadPoolExecutor(max_workers=16) as pool:
            statuses = list(pool.map(lambda _: requests.get(url, timeout=30).status_code, range(200)))
        self.assertEqual(statuses, [200] * 200)
        after, kept = self._backends()
        self.assertLessEqual(kept, IDLE_MAX)
        self.assertLessEqual(after, before + IDLE_MAX, f"backends {before} -> {after}")

    def test_terminated_kept_connection_is_replaced(self):
        self.assertEqual(self._get().status_code, 200)
        dbname, info = sql_db.connection_info_for(self.env.cr.dbname)
        conn = psycopg2.connect(**info)
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE application_name LIKE 'odoo-health-%%' AND datname = %s",
                    (dbname,),
                )
                self.assertGreaterEqual(cur.fetchone()[0], 1)
        finally:
            conn.close()
        response = self._get()
        self.assertEqual(response.status_code, 200, response.text)
        self.assertEqual(response.json()["checks"]["database"]["status"], "pass")

    def test_liveness_needs_no_database(self):
        with patch.dict(config.options, {"db_host": "127.0.0.1", "db_port": _closed_port()}):
            response = self._get("/web/health/live")
        self.assertEqual(response.status_code, 200, response.text)
        self.assertEqual(response.json(), {"status": "pass"})
        self.assertEqual(response.headers["Cache-Control"], "no-store")
        self.assertEqual(response.headers["Content-Type"].split(";")[0], "application/json")

    def test_loading_registry_reports_starting(self):
        with patch.object(self.registry, "ready", False):
            response = self._get()
        self._assert_fail(response, "starting")
        self.assertEqual(self._get().status_code, 200)

    def test_without_configured_database_checks_the_server(self):
        with patch.dict(config.options, {"db_name": False}):
            self.assertEqual(self._get().status_code, 200)
            with patch.dict(config.options, {"db_host": "127.0.0.1", "db_port": _closed_port()}):
                self._assert_fail(self._get(), "unreachable")

    def test_db_server_status_parameter_is_compatible(self):
        response = self._get("/web/health?db_server_status=1")
        self.assertEqual(response.status_code, 200)
        self.assertIs(response.json()["db_server_status"], True)
        with patch.dict(config.options, {"db_host": "127.0.0.1", "db_port": _closed_port()}):
            response = self._get("/web/health?db_server_status=1")
        self.assertEqual(response.status_code, 503)
        self.assertIs(response.json()["db_server_status"], False)

    def test_routes_answer_through_odoo_routing_too(self):
        """Without the early hook, the controller overriding web's route gives the same contract."""
        hooked = odoo.http.Application.__call__
        self.assertTrue(getattr(hooked, "_loomworks_health", False), "post_load did not install the hook")
        with patch.object(odoo.http.Application, "__call__", hooked.__wrapped__):
            response = self._get()
            self.assertEqual(response.status_code, 200, response.text)
            self.assertEqual(response.json()["checks"]["database"]["status"], "pass")
            self.assertEqual(response.headers["Cache-Control"], "no-store")
            self.assertEqual(self._get("/web/health/live").json(), {"status": "pass"})
            with patch.dict(config.options, {"db_host": "127.0.0.1", "db_port": _closed_port()}):
                self._assert_fail(self._get(), "unreachable")

    def test_invalid_timeout_setting_is_reported_and_defaulted(self):
        with patch.dict(config.options, {"health_statement_timeout": "soon"}), self.assertLogs(
            "odoo.addons.loomworks_health.config", "ERROR"
        ) as logs:
            response = self._get()
        self.assertEqual(response.status_code, 200, response.text)
        self.assertIn("health_statement_timeout='soon'", "\n".join(logs.output))

    def test_access_log_with_a_read_replica_configured(self):
        """With ``db_replica_host`` set, Odoo's access-log filter reads the thread's ``cursor_mode``.

        The early hook bypasses ``Application.__call__``, so it must reset the same
        per-request thread attributes; without ``cursor_mode`` every access-log line
        raised and no health call was answered.
        """
        with patch.dict(config.options, {"db_replica_host": "127.0.0.1"}), self.assertLogs(
            "werkzeug", logging.INFO  # a number: Odoo names its RUNBOT level (25) "INFO" too
        ) as logs:
            for path in ("/web/health", "/web/health/live"):
                self.assertEqual(self._get(path).status_code, 200, path)
        access = "\n".join(logs.output)
        self.assertIn("GET /web/health HTTP", access)
        self.assertIn("GET /web/health/live HTTP", access)

    def test_a_crashing_check_answers_503_error_with_the_contract(self):
        """A bug in the check itself (the only case where it is patched) is a 503 ``error``
        with the same body shape as every other failure, duration included."""
        from odoo.addons.loomworks_health import state

        with patch.object(state.readiness, "check", side_effect=RuntimeError("boom")), self.assertLogs(
            "odoo.addons.loomworks_health.wsgi", "ERROR"
        ):
            response = self._get()
        self._assert_fail(response, "error")
        self.assertGreaterEqual(response.json()["checks"]["database"]["duration_ms"], 0)
        self.assertNotIn("boom", response.text)
        self.assertEqual(self._get().status_code, 200)
