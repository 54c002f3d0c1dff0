# SPDX-License-Identifier: LGPL-3.0-or-later
"""The probe's kept connection: reused for at most IDLE_MAX_AGE seconds, never across a fork.

Round trips are serialised per process (see ``coalescer``), so one kept
connection is enough. A prefork worker inherits its master's list at fork: the
inherited connections are set aside and never closed (closing them would end
the master's session), and the worker opens its own.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from .connection import close

IDLE_MAX = 1  # validated connections kept per process (round trips are serialised)
IDLE_MAX_AGE = 60.0  # seconds; older kept connections are replaced by new ones


class KeptConnections:
    """A few validated connections per process, never shared across a fork."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pid = os.getpid()
        self.idle: list[tuple[tuple, Any, float]] = []  # (target, connection, created)
        self.orphans: list[Any] = []  # inherited across fork: never closed (would end the parent's session)

    def _check_fork(self) -> None:
        if self.pid != os.getpid():
            self.orphans.extend(conn for _, conn, _ in self.idle)
            self.idle = []
            self.pid = os.getpid()

    def take(self, key: tuple) -> tuple[Any, float] | None:
        """A kept, open connection for ``key`` younger than IDLE_MAX_AGE, and its creation time."""
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
            close(c)
        return conn

    def give_back(self, key: tuple, conn: Any, created: float) -> None:
        """Keep ``conn`` for the next round trip on ``key``, or close it when IDLE_MAX are kept."""
        with self.lock:
            self._check_fork()
            if len(self.idle) < IDLE_MAX and not conn.closed:
                self.idle.append((key, conn, created))
                return
        close(conn)
