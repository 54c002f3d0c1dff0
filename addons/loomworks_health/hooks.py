# SPDX-License-Identifier: LGPL-3.0-or-later
"""The manifest's ``post_load`` hook.

Odoo calls it once per process after importing the module: at server start when
the module is loaded server-wide (``--load``/``server_wide_modules``), otherwise
during the first registry load that imports it. Each step is idempotent.
"""

from . import registry, state, wsgi


def post_load():
    """Report bad settings, track registry loads, install the early WSGI hook."""
    state.settings.report_invalid()  # report a bad value at start-up, not at the first call
    registry.install_tracking(state.loads)
    wsgi.install()
