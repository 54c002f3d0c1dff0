# SPDX-License-Identifier: LGPL-3.0-or-later
"""Registry tracking: is the configured database's registry ready, loading or absent?

Read without waiting on Odoo's registry lock (a health call must never queue
behind a load or an upgrade): ``Registry.registries.d.get(db)`` and its
``ready`` flag, the loads seen through ``Registry.new`` (wrapped by
``install_tracking``), and whether another thread holds ``Registry._lock``
(the threaded server holds it while it preloads the databases).

When a database has no registry while PostgreSQL answers (the last load failed,
or it never ran), ``start_background_load`` loads it in a thread, as the first
user request would, at most once every ``RELOAD_INTERVAL`` seconds.
"""

from __future__ import annotations

import functools
import logging
import math
import threading
import time

from odoo.modules.registry import Registry

_logger = logging.getLogger(__name__)

RELOAD_INTERVAL = 5.0  # seconds between background registry loads of one database


class RegistryLoads:
    """Registry loads of this process: in progress, failed, started in the background."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.active: dict[str, int] = {}  # database -> Registry.new calls in progress
        self.failed: dict[str, float] = {}  # database -> when its last load failed
        self.loader: set[str] = set()  # databases being loaded by start_background_load
        self.last_attempt: dict[str, float] = {}  # database -> last background load started

    def begin(self, db: str) -> None:
        with self.lock:
            self.active[db] = self.active.get(db, 0) + 1

    def end(self, db: str, ok: bool) -> None:
        with self.lock:
            self.active[db] -= 1
            if not self.active[db]:
                del self.active[db]
            if ok:
                self.failed.pop(db, None)
            else:
                self.failed[db] = time.monotonic()

    def in_progress(self, db: str) -> bool:
        return bool(self.active.get(db)) or db in self.loader

    def has_failed(self, db: str) -> bool:
        """True when the last load of ``db`` failed."""
        return db in self.failed

    def state(self, db: str) -> str:
        """``ready``, ``loading`` or ``absent``, without taking the registry lock."""
        registry = Registry.registries.d.get(db)
        if registry is not None:
            return "ready" if getattr(registry, "ready", False) else "loading"
        if self.in_progress(db) or _registry_lock_busy():
            return "loading"
        return "absent"

    def start_background_load(self, db: str) -> None:
        """Load the registry of ``db`` in a thread; not while one runs, nor twice within RELOAD_INTERVAL."""
        now = time.monotonic()
        with self.lock:
            if db in self.loader or now - self.last_attempt.get(db, -math.inf) < RELOAD_INTERVAL:
                return
            self.loader.add(db)
            self.last_attempt[db] = now
        _logger.info("loomworks_health: database %r has no registry; loading it in the background", db)
        threading.Thread(target=self._load, args=(db,), name=f"loomworks_health.load.{db}",
                         daemon=True).start()

    def _load(self, db: str) -> None:
        try:
            Registry(db)
        except Exception:  # Odoo has logged the traceback already
            _logger.warning("loomworks_health: loading the registry of database %r failed", db)
        finally:
            with self.lock:
                self.loader.discard(db)


def _registry_lock_busy() -> bool:
    """True when another thread holds ``Registry._lock`` (creating/deleting registries)."""
    lock = Registry._lock
    try:
        acquired = lock.acquire(blocking=False)
    except TypeError:  # DummyRLock while Odoo runs in test mode
        return False
    if acquired:
        lock.release()
        return False
    return True


def install_tracking(loads: RegistryLoads) -> None:
    """Wrap ``Registry.new`` once per process so that ``loads`` sees every load begin and end."""
    current = Registry.__dict__["new"]
    func = current.__func__
    if getattr(func, "_loomworks_health", False):
        return

    @functools.wraps(func)
    def new(cls, db_name, *args, **kwargs):
        loads.begin(db_name)
        ok = False
        try:
            registry = func(cls, db_name, *args, **kwargs)
            ok = True
            return registry
        finally:
            loads.end(db_name, ok)

    new._loomworks_health = True  # type: ignore[attr-defined]
    Registry.new = classmethod(new)  # type: ignore[method-assign,assignment]
