# SPDX-License-Identifier: LGPL-3.0-or-later
{  # noqa: B018 - an Odoo manifest is a bare dict
    "name": "Loomworks Health",
    "summary": "Honest /web/health readiness (real database round trip) and /web/health/live liveness",
    "version": "18.0.1.0.0",
    "category": "Hidden/Tools",
    "author": "Loomworks",
    "license": "LGPL-3",
    "depends": ["web"],
    "data": [],
    "installable": True,
    "auto_install": False,
    "post_load": "post_load",
}
