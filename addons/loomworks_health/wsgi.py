# SPDX-License-Identifier: LGPL-3.0-or-later
"""The early WSGI hook: the health paths are answered ahead of Odoo's request machinery.

``install`` wraps ``odoo.http.Application.__call__`` (once per process) so that
``/web/health`` and ``/web/health/live`` are answered before Odoo builds a
session, lists the databases or opens a registry: a health call never waits on
the registry lock while a database is being loaded or upgraded. Every other
request goes to Odoo unchanged.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from typing import Any
from urllib.parse import parse_qs

import odoo.http

from . import responses, state

_logger = logging.getLogger(__name__)

READINESS_PATH = "/web/health"
LIVENESS_PATH = "/web/health/live"
PATHS = frozenset((READINESS_PATH, LIVENESS_PATH))


def _flag(query_string: str, name: str) -> bool:
    values = parse_qs(query_string, keep_blank_values=True).get(name)
    return bool(values and values[-1])


def _reset_thread() -> None:
    """The per-request thread attributes ``Application.__call__`` resets.

    Odoo's access-log filter (``odoo.netsvc.PerfFilter``) reads them, and
    ``cursor_mode`` too when ``db_replica_host`` is set.
    """
    thread = threading.current_thread()
    thread.query_count = 0  # type: ignore[attr-defined]
    thread.query_time = 0  # type: ignore[attr-defined]
    thread.perf_t0 = time.time()  # type: ignore[attr-defined]
    thread.cursor_mode = None  # type: ignore[attr-defined]
    for attr in ("dbname", "uid"):
        if hasattr(thread, attr):
            delattr(thread, attr)


def serve(environ: dict[str, Any], start_response: Any):
    """WSGI answer for the health paths, before Odoo's session/database machinery."""
    _reset_thread()
    t0 = time.monotonic()
    try:
        if environ.get("PATH_INFO") == LIVENESS_PATH:
            status, body = responses.liveness()
        else:
            status, body = state.readiness.check(_flag(environ.get("QUERY_STRING", ""), "db_server_status"))
    except Exception:
        _logger.exception("loomworks_health: health check crashed")
        status, body = responses.crashed(round((time.monotonic() - t0) * 1000, 2))
    return responses.wsgi_response(status, body)(environ, start_response)


def install() -> None:
    """Wrap ``Application.__call__`` once per process (idempotent)."""
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
