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

import contextlib
import functools
import logging
import math
import os
import selectors
import threading
import time
from typing import Any
from urllib.parse import parse_qs

import odoo.http
import psycopg2
import psycopg2.extensions
from odoo import sql_db

from . import config, registry, responses

_logger = logging.getLogger(__name__)
_settings = config.Settings()
_loads = registry.RegistryLoads()

READINESS_PATH = "/web/health"
LIVENESS_PATH = "/web/health/live"
PATHS = frozenset((READINESS_PATH, LIVENESS_PATH))

IDLE_MAX = 1  # validated connections kept per process (round trips are serialised)
IDLE_MAX_AGE = 60.0  # seconds; older kept connections are replaced by new ones

# libpq/server messages for a server that answered but refused the session.
_REJECTED = (
    "authentication failed",
    "pg_hba.conf",
    "does not exist",
    "too many",
    "remaining connection slots",
    "permission denied",
    "not permitted",
    "not currently accepting connections",
)


class CheckFailed(Exception):
    """A check failed with a machine-readable code."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


# --- database round trip ----------------------------------------------------------


class _Probe:
    """A few validated connections per process, never shared across a fork."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pid = os.getpid()
        self.idle: list[tuple[tuple, Any, float]] = []
        self.orphans: list[Any] = []  # inherited across fork: never closed (would end the parent's session)

    def _check_fork(self) -> None:
        if self.pid != os.getpid():
            self.orphans.extend(conn for _, conn, _ in self.idle)
            self.idle = []
            self.pid = os.getpid()

    def take(self, key: tuple) -> Any | None:
        stale = []
        conn = None
        with self.lock:
            self._check_fork()
            now = time.monotonic()
            while self.idle:
                k, c, created = self.idle.pop()
                if k == key and now - created < IDLE_MAX_AGE and not c.closed:
                    conn = (c, created)
                    break
                stale.append(c)
        for c in stale:
            _close(c)
        return conn

    def give_back(self, key: tuple, conn: Any, created: float) -> None:
        with self.lock:
            self._check_fork()
            if len(self.idle) < IDLE_MAX and not conn.closed:
                self.idle.append((key, conn, created))
                return
        _close(conn)

    def clear(self) -> None:
        with self.lock:
            idle, self.idle = self.idle, []
        for _, c, _ in idle:
            _close(c)


_probe = _Probe()


def _close(conn: Any) -> None:
    with contextlib.suppress(Exception):  # closing a broken connection may fail; nothing to do
        conn.close()


def _green() -> bool:
    """True under gevent, where psycopg2 has a wait callback and async connections are unusable."""
    return psycopg2.extensions.get_wait_callback() is not None


def _wait(conn: Any, deadline: float) -> None:
    """Drive an asynchronous connection until its operation completes or the deadline passes."""
    while True:
        state = conn.poll()
        if state == psycopg2.extensions.POLL_OK:
            return
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise CheckFailed("timeout")
        event = selectors.EVENT_READ if state == psycopg2.extensions.POLL_READ else selectors.EVENT_WRITE
        with selectors.DefaultSelector() as selector:
            selector.register(conn.fileno(), event)
            if not selector.select(remaining):
                raise CheckFailed("timeout")


def _params(db: str, statement_timeout: float, connect_timeout: float) -> dict[str, Any]:
    _, info = sql_db.connection_info_for(db)
    params = dict(info)
    params["application_name"] = f"odoo-health-{os.getpid()}"
    params["options"] = f"-c statement_timeout={max(1, round(statement_timeout * 1000))}"
    # libpq's own bound (whole seconds, at least 2); the client-side deadline is the precise one.
    params["connect_timeout"] = max(2, math.ceil(connect_timeout))
    return params


def _connect(params: dict[str, Any], connect_timeout: float) -> Any:
    if _green():
        return psycopg2.connect(**params)
    conn = psycopg2.connect(**params, async_=1)
    try:
        _wait(conn, time.monotonic() + connect_timeout)
    except BaseException:
        _close(conn)
        raise
    return conn


def _select_one(conn: Any, statement_timeout: float) -> None:
    cur = conn.cursor()
    try:
        cur.execute("SELECT 1")
        if not _green():
            # a little grace so the server's statement_timeout can answer first
            _wait(conn, time.monotonic() + statement_timeout + 0.25)
        if cur.fetchone() != (1,):
            raise CheckFailed("error")
    finally:
        cur.close()


def _round_trip_now(params: dict[str, Any], key: tuple, connect_timeout: float,
                    statement_timeout: float) -> None:
    kept = _probe.take(key)
    if kept is not None:
        conn, created = kept
        try:
            _select_one(conn, statement_timeout)
        except (CheckFailed, psycopg2.Error):
            _close(conn)  # stale or broken: decide on a new connection below
        else:
            _probe.give_back(key, conn, created)
            return
    conn = _connect(params, connect_timeout)
    try:
        _select_one(conn, statement_timeout)
    except BaseException:
        _close(conn)
        raise
    _probe.give_back(key, conn, time.monotonic())


class _Coalescer:
    """One round trip in flight per process and target; concurrent callers share the next one.

    A caller is only ever answered by a round trip that *started after it arrived*:
    if one is already running it waits for it to end and for the following one,
    which then serves every caller that queued meanwhile. Under a burst of calls
    the database sees one query at a time on one connection, and no answer is
    older than the call it answers.
    """

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.running: set[tuple] = set()
        self.started: dict[tuple, int] = {}
        self.finished: dict[tuple, tuple[int, str | None]] = {}  # target -> (index, error code)

    def run(self, params: dict[str, Any], connect_timeout: float, statement_timeout: float) -> None:
        """Raise ``CheckFailed`` with the code of the round trip that answers this call."""
        target = tuple(sorted((k, str(v)) for k, v in params.items()))  # database + settings
        budget = connect_timeout + 2 * statement_timeout + 0.5  # one retry on a new connection
        deadline = time.monotonic() + budget
        with self.cond:
            need = self.started.get(target, 0) + 1
            while True:
                index, code = self.finished.get(target, (0, None))
                if index >= need:
                    if code is not None:
                        raise CheckFailed(code)
                    return
                if target not in self.running:
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise CheckFailed("timeout")
                self.cond.wait(remaining)
            self.running.add(target)
            index = self.started[target] = self.started.get(target, 0) + 1
        code = None
        try:
            _round_trip_now(params, target, connect_timeout, statement_timeout)
        except Exception as exc:
            code = classify(exc)
            if code == "error":
                _logger.exception("loomworks_health: unexpected error in the database check")
        finally:
            with self.cond:
                self.running.discard(target)
                self.finished[target] = (index, code)
                self.cond.notify_all()
        if code is not None:
            raise CheckFailed(code)


_coalescer = _Coalescer()


def round_trip(db: str) -> None:
    """``SELECT 1`` on ``db`` started during this call; raises on any failure."""
    connect_timeout = _settings.timeout(config.CONNECT_TIMEOUT)
    statement_timeout = _settings.timeout(config.STATEMENT_TIMEOUT)
    _coalescer.run(_params(db, statement_timeout, connect_timeout), connect_timeout, statement_timeout)


def classify(exc: BaseException) -> str:
    """Machine-readable code for a failed round trip (never the message itself)."""
    if isinstance(exc, CheckFailed):
        return exc.code
    if isinstance(exc, psycopg2.extensions.QueryCanceledError):
        return "timeout"
    if isinstance(exc, psycopg2.Error):
        message = str(exc).lower()
        if "timeout" in message:
            return "timeout"
        if any(fragment in message for fragment in _REJECTED):
            return "rejected"
        if isinstance(exc, psycopg2.OperationalError | psycopg2.InterfaceError):
            return "unreachable"
    return "error"


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
        try:
            round_trip(db)
        except CheckFailed as exc:
            code = exc.code
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
