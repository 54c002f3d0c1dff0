# SPDX-License-Identifier: LGPL-3.0-or-later
"""``SELECT 1`` on a database, started during the call it answers.

A kept connection is tried first; if it fails it is closed and the check is
decided on a new connection, so a stale connection can neither pass nor fail a
call on its own. Worst case for one call: connect timeout + 2 x statement
timeout. Calls are coalesced per target (database and connection settings).
"""

from __future__ import annotations

import functools
import logging
import time
from typing import Any

import psycopg2

from . import connection
from .coalescer import Coalescer
from .errors import CheckFailed, classify
from .pool import KeptConnections

_logger = logging.getLogger(__name__)

BUDGET_MARGIN = 0.5  # seconds a queued caller waits beyond the worst case of one round trip


class DatabaseProbe:
    """The round trip, its kept connection and its coalescer (one probe per process)."""

    def __init__(self) -> None:
        self.connections = KeptConnections()
        self.coalescer = Coalescer()

    def check(self, db: str, connect_timeout: float, statement_timeout: float) -> str | None:
        """None when a round trip on ``db`` that started during this call passed, else its error code."""
        params = connection.params(db, statement_timeout, connect_timeout)
        target = tuple(sorted((k, str(v)) for k, v in params.items()))  # database + settings
        budget = connect_timeout + 2 * statement_timeout + BUDGET_MARGIN  # one retry on a new connection
        attempt = functools.partial(self._attempt, params, target, connect_timeout, statement_timeout)
        return self.coalescer.run(target, budget, attempt)

    def _attempt(self, params: dict[str, Any], target: tuple, connect_timeout: float,
                 statement_timeout: float) -> str | None:
        try:
            self._round_trip(params, target, connect_timeout, statement_timeout)
        except Exception as exc:
            code = classify(exc)
            if code == "error":
                _logger.exception("loomworks_health: unexpected error in the database check")
            return code
        return None

    def _round_trip(self, params: dict[str, Any], target: tuple, connect_timeout: float,
                    statement_timeout: float) -> None:
        kept = self.connections.take(target)
        if kept is not None:
            conn, created = kept
            try:
                connection.select_one(conn, statement_timeout)
            except (CheckFailed, psycopg2.Error):
                connection.close(conn)  # stale or broken: decide on a new connection below
            else:
                self.connections.give_back(target, conn, created)
                return
        conn = connection.connect(params, connect_timeout)
        try:
            connection.select_one(conn, statement_timeout)
        except BaseException:
            connection.close(conn)
            raise
        self.connections.give_back(target, conn, time.monotonic())
