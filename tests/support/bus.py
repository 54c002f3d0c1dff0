"""Odoo's bus, end to end, from a websocket client (the websocket-client library, ``ws_connect``
in tests/support/nginx.py): subscribe the way Odoo 18's web client does (its websocket worker
sends ``{"event_name": "subscribe", "data": {"channels": [...], "last": N}}``), let the server
send a notification through the real bus (``bus.bus._sendone``: a row, then ``NOTIFY imbus``,
which wakes the websocket's dispatcher), and read it off the socket.

The server side is the test addon's route (tests/docker/addons/lwtest_slow,
``GET /lwtest/bus/send?channel=C&token=T``): it sends one notification of type
``lwtest/bus`` with the payload ``{"channel": C, "token": T}`` on the string channel ``C``.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from urllib.parse import urlencode

import websocket

# What Odoo 18's websocket worker opens (bus/websocket.py WebsocketConnectionHandler._VERSION).
WS_PATH = "/websocket?version=18.0-2"
TYPE = "lwtest/bus"


def send_path(channel: str, token: str) -> str:
    """The test addon's route that sends ``{"channel", "token"}`` on ``channel``."""
    return f"/lwtest/bus/send?{urlencode({'channel': channel, 'token': token})}"


def expected(channel: str, token: str) -> dict:
    """The notification's message as the bus delivers it."""
    return {"type": TYPE, "payload": {"channel": channel, "token": token}}


def subscribe(ws: websocket.WebSocket, channels: list[str], last: int = 0) -> None:
    ws.send(json.dumps({"event_name": "subscribe", "data": {"channels": channels, "last": last}}))


def receive(ws: websocket.WebSocket, token: str, timeout: float, seen: list[dict] | None = None) -> dict:
    """The next notification carrying ``token`` (``{"id", "message"}``); the others the
    subscription brings (the public ``broadcast`` channel, ...) are skipped, and appended to
    ``seen`` when given."""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        ws.settimeout(left)
        try:
            frame = ws.recv()
        except websocket.WebSocketTimeoutException:
            break
        found = None
        for notification in json.loads(frame):  # a frame may carry several
            if found is None and notification.get("message", {}).get("payload", {}).get("token") == token:
                found = notification
            elif seen is not None:
                seen.append(notification)
        if found is not None:
            return found
    raise TimeoutError(f"no bus notification with token {token} within {timeout}s")


def round_trip(ws: websocket.WebSocket, send: Callable[[str, str], None], timeout: float = 30) -> dict:
    """Subscribe ``ws`` to a new channel and have ``send(channel, token)`` make the server send
    on it, twice. The first notification may come with the subscription itself (Odoo answers
    a subscription with the channel's recent notifications); once it has arrived the
    subscription is registered, so the second can only come through ``NOTIFY imbus`` to the
    websocket's dispatcher. Asserts both are exactly what was sent; returns the second."""
    channel = f"lwtest-{secrets.token_hex(8)}"
    subscribe(ws, [channel])
    got = []
    for _ in range(2):
        token = secrets.token_hex(8)
        send(channel, token)
        notification = receive(ws, token, timeout)
        assert notification["message"] == expected(channel, token), notification
        got.append(notification)
    assert got[1]["id"] > got[0]["id"], got
    return got[1]
