# SPDX-License-Identifier: LGPL-3.0-or-later
"""The database probe: a real ``SELECT 1`` round trip, its connection and its coalescer."""

from .database import DatabaseProbe  # noqa: F401
