# SPDX-License-Identifier: LGPL-3.0-or-later
"""Odoo's ``ir.mail_server``: every connection goes to the catcher.

The patches go on the class that defines the model in ``base``
(``odoo.addons.base.models.ir_mail_server.IrMailServer``): every registry's
``ir.mail_server`` class has it in its MRO, so they hold in every database, those loaded
or created (restored, copied) after the start included, and under every override that
calls ``super()``. No database is written: a copy keeps its mail servers as they are.

* ``_find_mail_server`` sees no mail server, as in a database without any: the sender
  address is chosen as for the configured server (``from_filter``).
* ``connect`` connects to the catcher whatever it is given (``mail_server_id``, ``host``,
  credentials, encryption, certificates): ``send_email``, ``mail.mail``, the "Test
  Connection" button and any code calling it.
"""

from __future__ import annotations

import functools
import logging

from odoo.addons.base.models.ir_mail_server import IrMailServer

from .target import Catcher

_logger = logging.getLogger(__name__)
MARK = "_loomworks_dev_mail"


def _asked(model, host, port, mail_server_id) -> str:
    """What the caller asked for, for the log line."""
    if not mail_server_id:
        return f"SMTP server {host}:{port or ''}"
    server = model.sudo().browse(mail_server_id).exists()
    where = f" ({server.smtp_host}:{server.smtp_port})" if server else ""
    return f"mail server #{mail_server_id}{where}"


def install(catcher: Catcher) -> None:
    """Patch ``IrMailServer`` once per process (idempotent)."""
    if getattr(IrMailServer.connect, MARK, False):
        return
    find_original = IrMailServer._find_mail_server
    connect_original = IrMailServer.connect

    @functools.wraps(find_original)
    def _find_mail_server(self, email_from, mail_servers=None):
        return find_original(self, email_from, mail_servers=self.browse())

    @functools.wraps(connect_original)
    def connect(self, host=None, port=None, user=None, password=None, encryption=None, smtp_from=None,
                ssl_certificate=None, ssl_private_key=None, smtp_debug=False, mail_server_id=None,
                allow_archived=False):
        # Credentials, encryption and certificates always come from the configuration
        # (smtp_user, smtp_ssl, ...: none for the catcher), never from a record or the caller.
        if not (mail_server_id or host):
            # Odoo's own path with no mail server: _find_mail_server (above) finds none, and
            # the configured smtp_server/smtp_port are used.
            return connect_original(self, smtp_from=smtp_from, smtp_debug=smtp_debug,
                                    allow_archived=allow_archived)
        _logger.info("loomworks_dev_mail: %s ignored, connecting to %s",
                     _asked(self, host, port, mail_server_id), catcher)
        return connect_original(self, catcher.host, catcher.port, smtp_from=smtp_from, smtp_debug=smtp_debug,
                                allow_archived=allow_archived)

    setattr(connect, MARK, True)
    IrMailServer._find_mail_server = _find_mail_server
    IrMailServer.connect = connect
