# SPDX-License-Identifier: LGPL-3.0-or-later
from . import test_coalescer, test_health  # noqa: F401
