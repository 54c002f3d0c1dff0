# SPDX-License-Identifier: LGPL-3.0-or-later
"""The manifest's ``post_load`` hook: apply the guard once per process, or stop the process.

Odoo calls it when it loads the module server-wide (``server_wide_modules``), at the start
of every process that may send mail (server, ``odoo shell``, ``--stop-after-init`` runs),
before any registry is built; prefork workers and cron workers inherit the patched classes.
Odoo only logs an exception raised while loading a server-wide module, and would run on
without the guard: a failure here raises SystemExit instead, so no process runs unguarded.
"""

import logging

_logger = logging.getLogger(__name__)


def post_load():
    try:
        from . import mail_server, smtp, target

        catcher = target.catcher()
        smtp.install(catcher)
        mail_server.install(catcher)
    except Exception as exc:
        _logger.critical("loomworks_dev_mail: cannot route mail to the catcher, stopping: %s", exc,
                         exc_info=True)
        raise SystemExit(f"loomworks_dev_mail: cannot route mail to the catcher: {exc}") from exc
    _logger.info("loomworks_dev_mail: every outgoing mail goes to %s (smtp_server/smtp_port); "
                 "ir.mail_server records and SMTP servers named by code are ignored, any other "
                 "SMTP connection is refused", catcher)
