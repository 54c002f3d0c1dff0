# SPDX-License-Identifier: LGPL-3.0-or-later
# Nothing else is imported here: an import error would be logged by Odoo and the server
# would go on without the guard. post_load imports the patches and stops the process when
# they cannot be applied.
from .hooks import post_load  # noqa: F401 - the manifest's post_load
