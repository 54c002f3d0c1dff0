# SPDX-License-Identifier: LGPL-3.0-or-later
"""The process's health state: the addon's only module-level instances, created here.

Everything else receives them (``hooks``) or reads them from here (``wsgi``,
the controllers). Odoo imports an addon once per process. A prefork worker
inherits these objects from the master at fork (the kept connection notices the
fork and opens its own); in the gevent process they are created after gevent's
monkey patching, so their locks are green.
"""

from . import config
from .checks import Readiness
from .probe import DatabaseProbe
from .registry import RegistryLoads

settings = config.Settings()  # the timeouts; reports each invalid value once
loads = RegistryLoads()  # registry loads seen through Registry.new, background loads
probe = DatabaseProbe()  # the round trip: its kept connection and its coalescer
readiness = Readiness(settings, loads, probe)
