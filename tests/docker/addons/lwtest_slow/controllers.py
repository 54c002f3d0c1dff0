"""Test-only addon: an HTTP route that takes a given time, to prove graceful shutdown."""

import logging
import time

from odoo import http

_logger = logging.getLogger(__name__)


class Slow(http.Controller):
    @http.route("/lwtest/sleep", type="http", auth="none", methods=["GET"], save_session=False)
    def sleep(self, seconds="10", **kwargs):
        _logger.info("lwtest: request started, sleeping %s s", seconds)
        time.sleep(float(seconds))
        _logger.info("lwtest: request done")
        return f"slept {seconds}"
