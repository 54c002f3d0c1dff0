# SPDX-License-Identifier: LGPL-3.0-or-later
"""Route-level overrides of web's ``/web/health``.

Normally the early hook (``wsgi.py``, installed by the module's ``post_load``)
answers both paths before Odoo opens a registry, so these methods only run if
that hook is absent. They give the same answers through Odoo's routing, so the
URL contract holds either way.
"""

from odoo import http
from odoo.addons.web.controllers.home import Home
from odoo.http import request

from .. import responses, state
from ..wsgi import LIVENESS_PATH, READINESS_PATH


class HealthHome(Home):
    @http.route(READINESS_PATH, type="http", auth="none", save_session=False)
    def health(self, db_server_status=False, **kwargs):
        status, body = state.readiness.check(bool(db_server_status))
        return self._health_response(status, body)

    @http.route(LIVENESS_PATH, type="http", auth="none", save_session=False)
    def health_live(self, **kwargs):
        status, body = responses.liveness()
        return self._health_response(status, body)

    def _health_response(self, status, body):
        return request.make_response(responses.dumps(body), responses.headers(), status=status)
