# SPDX-License-Identifier: LGPL-3.0-or-later
{  # noqa: B018 - an Odoo manifest is a bare dict
    "name": "Loomworks Dev Mail",
    "summary": "Development only: every outgoing mail goes to the configured SMTP server (the mail catcher)",
    "version": "18.0.1.0.0",
    "category": "Hidden/Tools",
    "author": "Loomworks",
    "license": "LGPL-3",
    "depends": ["base"],
    "data": [],
    # Loaded server-wide only (server_wide_modules): never installed in a database, so a
    # database never records it and carries nothing of it to production.
    "installable": False,
    "auto_install": False,
    "post_load": "post_load",
}
