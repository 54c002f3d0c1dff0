# SPDX-License-Identifier: LGPL-3.0-or-later
"""The manifest's ``post_load`` hook.

Odoo calls it once per process after importing the module: at server start when
the module is loaded server-wide (``--load``/``server_wide_modules``), otherwise
during the first registry load that imports it.
"""

from . import health


def post_load():
    """Install the early WSGI hook (runs for server-wide loading and on registry load)."""
    health.install()
