# SPDX-License-Identifier: LGPL-3.0-or-later
from . import controllers, health  # noqa: F401


def post_load():
    """Install the early WSGI hook (runs for server-wide loading and on registry load)."""
    health.install()
