# SPDX-License-Identifier: LGPL-3.0-or-later
"""The answers: JSON bodies, status codes and headers (README.rst, "JSON contract").

Every function returns ``(status, body)``; ``wsgi_response`` and ``headers`` turn
one into an HTTP answer for the early hook and the controllers alike. A body
never carries host names, ports, user names, passwords, server messages or
tracebacks: only the machine-readable codes below.
"""

from __future__ import annotations

import json
from typing import Any

from werkzeug.wrappers import Response

CONTENT_TYPE = "application/json"
HEADERS = (("Cache-Control", "no-store"),)

Answer = tuple[int, dict[str, Any]]


def readiness(code: str | None, duration_ms: float, db_server_status: bool = False) -> Answer:
    """200 ``pass`` when ``code`` is None, else 503 ``fail`` with ``code`` as reason and error."""
    check: dict[str, Any] = {"status": "pass" if code is None else "fail"}
    if code is not None:
        check["error"] = code
    check["duration_ms"] = duration_ms
    body: dict[str, Any] = {"status": check["status"]}
    if code is not None:
        body["reason"] = code
    body["checks"] = {"database": check}
    if db_server_status:  # Odoo's own query parameter, kept for compatibility
        body["db_server_status"] = code is None
    return (200 if code is None else 503), body


def crashed(duration_ms: float) -> Answer:
    """The readiness answer when the check itself raised (logged by the caller): code ``error``."""
    return readiness("error", duration_ms)


def liveness() -> Answer:
    return 200, {"status": "pass"}


def dumps(body: dict[str, Any]) -> str:
    return json.dumps(body)


def headers() -> list[tuple[str, str]]:
    """Every header of an answer (for ``request.make_response``)."""
    return [("Content-Type", CONTENT_TYPE), *HEADERS]


def wsgi_response(status: int, body: dict[str, Any]) -> Response:
    return Response(dumps(body), status=status, headers=list(HEADERS), content_type=CONTENT_TYPE)
