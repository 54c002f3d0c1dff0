# SPDX-License-Identifier: LGPL-3.0-or-later
"""Where mail goes: Odoo's configured ``smtp_server``/``smtp_port`` (in the development
override, the mail catcher ``mail:1025``)."""

from __future__ import annotations

from dataclasses import dataclass

from odoo.tools import config


@dataclass(frozen=True)
class Catcher:
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"

    def is_target(self, host: str, port: int) -> bool:
        return host.strip().lower() == self.host.lower() and port == self.port


def catcher() -> Catcher:
    host = (config.get("smtp_server") or "").strip()
    if not host:
        raise ValueError("smtp_server is not set")
    return Catcher(host, int(config.get("smtp_port") or 25))
