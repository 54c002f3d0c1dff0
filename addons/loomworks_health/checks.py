# SPDX-License-Identifier: LGPL-3.0-or-later
"""Readiness (``/web/health``): the registry's state, then a real database round trip.

1. A database is configured (``db_name``) and its registry is loading or being
   upgraded: 503 ``starting`` at once, without a round trip.
2. ``SELECT 1`` on the configured database (``postgres`` when none is
   configured), started during the call: 503 with the probe's code when it fails.
3. The configured database has no registry (its load failed, e.g. Odoo started
   while PostgreSQL was down, or it never ran): 503 ``registry_failed`` or
   ``starting``, and a load starts in the background (see ``registry``), as the
   first user request would.

Each change of the answer is logged once (pass at INFO, fail at WARNING).
"""

from __future__ import annotations

import logging
import time

from . import config, responses
from .probe import DatabaseProbe
from .registry import RegistryLoads

_logger = logging.getLogger(__name__)


class Readiness:
    """The readiness answer, from the settings, the registry tracker and the probe it is given."""

    def __init__(self, settings: config.Settings, loads: RegistryLoads, probe: DatabaseProbe) -> None:
        self.settings = settings
        self.loads = loads
        self.probe = probe
        self.last_code: str | None = None  # the answer last logged (None: pass)

    def check(self, db_server_status: bool = False) -> responses.Answer:
        t0 = time.monotonic()
        configured = config.configured_db()
        db = configured or config.MAINTENANCE_DB
        state = self.loads.state(configured) if configured else "ready"
        code: str | None = "starting" if state == "loading" else None
        if code is None:
            code = self.probe.check(db, self.settings.timeout(config.CONNECT_TIMEOUT),
                                    self.settings.timeout(config.STATEMENT_TIMEOUT))
        if code is None and state == "absent":
            code = "registry_failed" if self.loads.has_failed(configured) else "starting"  # type: ignore[arg-type]
            self.loads.start_background_load(configured)  # type: ignore[arg-type]
        duration_ms = round((time.monotonic() - t0) * 1000, 2)
        self._log_transition(code, db)
        return responses.readiness(code, duration_ms, db_server_status)

    def _log_transition(self, code: str | None, db: str) -> None:
        if self.last_code == code:
            return
        self.last_code = code
        if code is None:
            _logger.info("loomworks_health: readiness pass (database %r)", db)
        else:
            _logger.warning("loomworks_health: readiness fail: %s (database %r)", code, db)
