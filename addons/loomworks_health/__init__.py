# SPDX-License-Identifier: LGPL-3.0-or-later
from . import controllers  # noqa: F401
from .hooks import post_load  # noqa: F401 - the manifest's post_load
