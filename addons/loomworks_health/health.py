# SPDX-License-Identifier: LGPL-3.0-or-later
"""Readiness and liveness checks, and the early WSGI hook that serves them.

The hook wraps ``odoo.http.Application.__call__`` so that ``/web/health`` and
``/web/health/live`` are answered before Odoo builds a session, lists the
databases or opens a registry: a health call never waits on the registry lock
while a database is being loaded or upgraded.

Readiness (``/web/health``):

1. If a database is configured (``db_name``, first of a comma list) and its
   registry is loading or being upgraded -> 503 ``starting`` at once.
2. A real ``SELECT 1`` round trip on a dedicated, validated connection to the
   configured database (``postgres`` when none is configured), with a
   client-side deadline: ``health_connect_timeout`` for connecting and
   ``health_statement_timeout`` for the query (also set as the server's
   ``statement_timeout``). A kept connection that fails is closed and the check
   is retried once on a new connection, so a stale connection never decides.
   One round trip runs at a time per process; concurrent calls are answered by
   the next round trip that starts after they arrived (see ``_Coalescer``).
3. If the configured database has no registry (the load failed, e.g. Odoo
   started while PostgreSQL was down, or it was never loaded) -> 503
   ``registry_failed`` or ``starting``, and a registry load is started in the
   background (at most once every ``RELOAD_INTERVAL`` seconds), exactly what the
   first user request would otherwise do.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from typing import Any
from urllib.parse import parse_qs

import odoo.http

from . import config, registry, responses
from .probe import DatabaseProbe

_logger = logging.getLogger(__name__)
_settings = config.Settings()
_loads = registry.RegistryLoads()
_probe = DatabaseProbe()

READINESS_PATH = "/web/health"
LIVENESS_PATH = "/web/health/live"
PATHS = frozenset((READINESS_PATH, LIVENESS_PATH))

# --- responses ----------------------------------------------------------------------

_last_code: list[str | None] = [None]


def _log_transition(code: str | None, db: str) -> None:
    if _last_code[0] == code:
        return
    _last_code[0] = code
    if code is None:
        _logger.info("loomworks_health: readiness pass (database %r)", db)
    else:
        _logger.warning("loomworks_health: readiness fail: %s (database %r)", code, db)


def readiness(db_server_status: bool = False) -> responses.Answer:
    t0 = time.monotonic()
    configured = config.configured_db()
    db = configured or config.MAINTENANCE_DB
    state = _loads.state(configured) if configured else "ready"
    code: str | None = "starting" if state == "loading" else None
    if code is None:
        code = _probe.check(db, _settings.timeout(config.CONNECT_TIMEOUT),
                            _settings.timeout(config.STATEMENT_TIMEOUT))
    if code is None and state == "absent":
        code = "registry_failed" if _loads.has_failed(configured) else "starting"  # type: ignore[arg-type]
        _loads.start_background_load(configured)  # type: ignore[arg-type]
    duration_ms = round((time.monotonic() - t0) * 1000, 2)
    _log_transition(code, db)
    return responses.readiness(code, duration_ms, db_server_status)


def _flag(query_string: str, name: str) -> bool:
    values = parse_qs(query_string, keep_blank_values=True).get(name)
    return bool(values and values[-1])


def serve(environ: dict[str, Any], start_response: Any):
    """WSGI answer for the health paths, before Odoo's session/database machinery."""
    # the per-request thread attributes Odoo's Application.__call__ resets; its access-log
    # filter (odoo.netsvc.PerfFilter) reads them, cursor_mode too when db_replica_host is set
    thread = threading.current_thread()
    thread.query_count = 0  # type: ignore[attr-defined]
    thread.query_time = 0  # type: ignore[attr-defined]
    thread.perf_t0 = time.time()  # type: ignore[attr-defined]
    thread.cursor_mode = None  # type: ignore[attr-defined]
    for attr in ("dbname", "uid"):
        if hasattr(thread, attr):
            delattr(thread, attr)
    try:
        if environ.get("PATH_INFO") == LIVENESS_PATH:
            status, body = responses.liveness()
        else:
            status, body = readiness(_flag(environ.get("QUERY_STRING", ""), "db_server_status"))
    except Exception:
        _logger.exception("loomworks_health: health check crashed")
        status, body = responses.crashed()
    return responses.wsgi_response(status, body)(environ, start_response)


def install() -> None:
    """Wrap ``Application.__call__`` and ``Registry.new`` once per process (idempotent)."""
    _settings.report_invalid()  # report a bad value at start-up, not at the first call
    registry.install_tracking(_loads)
    app = odoo.http.Application
    original = app.__call__
    if getattr(original, "_loomworks_health", False):
        return

    @functools.wraps(original)
    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO") in PATHS:
            return serve(environ, start_response)
        return original(self, environ, start_response)

    __call__._loomworks_health = True  # type: ignore[attr-defined]
    app.__call__ = __call__  # type: ignore[method-assign]
    _logger.info("loomworks_health: serving %s and %s ahead of the registry", READINESS_PATH, LIVENESS_PATH)
