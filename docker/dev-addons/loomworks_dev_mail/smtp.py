# SPDX-License-Identifier: LGPL-3.0-or-later
"""Python's ``smtplib``: a connection to anything but the catcher is refused.

Code that talks SMTP without ``ir.mail_server`` (``smtplib.SMTP(host)``, ``SMTP_SSL``,
``LMTP`` over TCP) cannot reach another server from this process: it gets
``ConnectionRefusedError`` naming the catcher.
"""

from __future__ import annotations

import functools
import smtplib

from .target import Catcher

MARK = "_loomworks_dev_mail"


def destination(smtp: smtplib.SMTP, host: str, port: int | str) -> tuple[str, int]:
    """The (host, port) ``smtplib.SMTP.connect`` connects to: its ``host:port`` form and
    the class's default port included."""
    if not port and host.find(":") == host.rfind(":"):
        i = host.rfind(":")
        if i >= 0:
            host, port = host[:i], host[i + 1:]
    try:
        port = int(port or smtp.default_port)
    except ValueError:
        raise OSError("nonnumeric port") from None
    return host, port


def install(catcher: Catcher) -> None:
    """Wrap ``smtplib.SMTP.connect`` once per process (idempotent)."""
    original = smtplib.SMTP.connect
    if getattr(original, MARK, False):
        return

    @functools.wraps(original)
    def connect(self, host="localhost", port=0, source_address=None):
        dest_host, dest_port = destination(self, host, port)
        if not catcher.is_target(dest_host, dest_port):
            raise ConnectionRefusedError(
                f"loomworks_dev_mail: SMTP to {dest_host}:{dest_port} refused: "
                f"in development mail goes to {catcher} only")
        return original(self, host, port, source_address)

    setattr(connect, MARK, True)
    smtplib.SMTP.connect = connect  # type: ignore[method-assign]
