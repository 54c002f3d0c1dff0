# SPDX-License-Identifier: LGPL-3.0-or-later
"""The addon's settings, read from Odoo's configuration at every call.

``health_connect_timeout`` and ``health_statement_timeout`` are positive numbers
of seconds (default 2); an invalid value is reported once as an ERROR naming the
key and the value, and the default is used: a typo must not take the health
endpoint down. The checked database is the configured ``db_name`` (first of a
comma-separated list), else PostgreSQL's ``postgres`` maintenance database.
"""

from __future__ import annotations

import logging
import math

from odoo.tools import config

_logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 2.0  # seconds, for both keys
CONNECT_TIMEOUT = "health_connect_timeout"
STATEMENT_TIMEOUT = "health_statement_timeout"
TIMEOUT_KEYS = (CONNECT_TIMEOUT, STATEMENT_TIMEOUT)
MAINTENANCE_DB = "postgres"


class Settings:
    """Reads the timeouts; remembers which invalid values it has reported."""

    def __init__(self) -> None:
        self.reported: set[tuple[str, str]] = set()

    def timeout(self, key: str) -> float:
        """A positive number of seconds from the Odoo config; the default (logged once) when invalid."""
        raw = config.get(key)
        if raw is None or raw is False or raw == "":
            return DEFAULT_TIMEOUT
        try:
            value = float(raw)
        except (TypeError, ValueError):
            value = math.nan
        if not (math.isfinite(value) and value > 0):
            if (key, str(raw)) not in self.reported:
                self.reported.add((key, str(raw)))
                _logger.error(
                    "loomworks_health: %s=%r in the Odoo config is not a positive number of seconds;"
                    " using %s",
                    key, raw, DEFAULT_TIMEOUT,
                )
            return DEFAULT_TIMEOUT
        return value

    def report_invalid(self) -> None:
        """Read every timeout once, so that a bad value is reported at start-up."""
        for key in TIMEOUT_KEYS:
            self.timeout(key)


def configured_db() -> str | None:
    """The configured database (first of ``db_name``), or None in multi-database mode."""
    names = config.get("db_name")
    if not names or not isinstance(names, str):
        return None
    return names.split(",")[0].strip() or None
