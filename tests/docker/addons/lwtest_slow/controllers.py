"""Test-only addon: an HTTP route that takes a given time (graceful shutdown), and one that
sends a bus notification (websocket delivery through nginx; tests/support/bus.py)."""

import logging
import time

from odoo import http
from odoo.http import request

_logger = logging.getLogger(__name__)


class Slow(http.Controller):
    @http.route("/lwtest/sleep", type="http", auth="none", methods=["GET"], save_session=False)
    def sleep(self, seconds="10", **kwargs):
        _logger.info("lwtest: request started, sleeping %s s", seconds)
        time.sleep(float(seconds))
        _logger.info("lwtest: request done")
        return f"slept {seconds}"

    @http.route("/lwtest/bus/send", type="http", auth="public", methods=["GET"], save_session=False)
    def bus_send(self, channel, token, **kwargs):
        """One notification on the string channel ``channel`` through the real bus: a bus.bus
        row, then NOTIFY imbus once the transaction commits."""
        request.env["bus.bus"]._sendone(channel, "lwtest/bus", {"channel": channel, "token": token})
        return f"sent {token}"
