# SPDX-License-Identifier: LGPL-3.0-or-later
"""Why a round trip failed, as the machine-readable code the JSON body carries.

Never the message itself: it may name hosts, ports, users or the server's words.
"""

from __future__ import annotations

import psycopg2
import psycopg2.extensions

# libpq/server messages for a server that answered but refused the session.
REJECTED = (
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


def classify(exc: BaseException) -> str:
    """``timeout``, ``rejected``, ``unreachable`` or ``error`` for a failed round trip."""
    if isinstance(exc, CheckFailed):
        return exc.code
    if isinstance(exc, psycopg2.extensions.QueryCanceledError):
        return "timeout"
    if isinstance(exc, psycopg2.Error):
        message = str(exc).lower()
        if "timeout" in message:
            return "timeout"
        if any(fragment in message for fragment in REJECTED):
            return "rejected"
        if isinstance(exc, psycopg2.OperationalError | psycopg2.InterfaceError):
            return "unreachable"
    return "error"
