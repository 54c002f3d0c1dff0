# SPDX-License-Identifier: LGPL-3.0-or-later
"""One PostgreSQL connection of the probe, bounded by a client-side deadline.

The probe does not use Odoo's pool. It connects with Odoo's own settings
(``sql_db.connection_info_for``: ``db_host``, ``db_port``, ``db_user``,
``db_password``, ``db_sslmode``) in non-blocking mode and polls with a deadline,
so a black-holed server cannot hang a call. Under gevent (the ``gevent``
process) psycopg2 has a wait callback and runs in green mode instead: the
connect timeout is then libpq's (whole seconds, at least 2) and the statement
timeout is enforced by the server only.
"""

from __future__ import annotations

import contextlib
import math
import os
import selectors
import time
from typing import Any

import psycopg2
import psycopg2.extensions
from odoo import sql_db

from .errors import CheckFailed

STATEMENT_GRACE = 0.25  # seconds past statement_timeout, so that the server's own timeout answers first


def params(db: str, statement_timeout: float, connect_timeout: float) -> dict[str, Any]:
    """psycopg2 connection parameters for ``db``, named ``odoo-health-<pid>`` on the server."""
    _, info = sql_db.connection_info_for(db)
    result = dict(info)
    result["application_name"] = f"odoo-health-{os.getpid()}"
    result["options"] = f"-c statement_timeout={max(1, round(statement_timeout * 1000))}"
    # libpq's own bound (whole seconds, at least 2); the client-side deadline is the precise one.
    result["connect_timeout"] = max(2, math.ceil(connect_timeout))
    return result


def green() -> bool:
    """True under gevent, where psycopg2 has a wait callback and async connections are unusable."""
    return psycopg2.extensions.get_wait_callback() is not None


def wait(conn: Any, deadline: float) -> None:
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


def connect(conn_params: dict[str, Any], connect_timeout: float) -> Any:
    """A new connection, open within ``connect_timeout`` seconds (libpq's bound under gevent)."""
    if green():
        return psycopg2.connect(**conn_params)
    conn = psycopg2.connect(**conn_params, async_=1)
    try:
        wait(conn, time.monotonic() + connect_timeout)
    except BaseException:
        close(conn)
        raise
    return conn


def select_one(conn: Any, statement_timeout: float) -> None:
    """``SELECT 1`` on ``conn``; raises unless it answers 1 in time."""
    cur = conn.cursor()
    try:
        cur.execute("SELECT 1")
        if not green():
            wait(conn, time.monotonic() + statement_timeout + STATEMENT_GRACE)
        if cur.fetchone() != (1,):
            raise CheckFailed("error")
    finally:
        cur.close()


def close(conn: Any) -> None:
    with contextlib.suppress(Exception):  # closing a broken connection may fail; nothing to do
        conn.close()
