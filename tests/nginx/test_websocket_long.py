"""A websocket through nginx stays usable past nginx's 60 s default timeouts (on /websocket;
/longpolling shares its location, and test_proxy checks both are upgraded). One connection: an
echo round trip, then the client asks the server to push after 65 s of silence (longer than
proxy_read_timeout's default 60 s, which would close it), then echo round trips again."""

from __future__ import annotations

import time

import pytest

from tests.support.nginx import NginxRun, ws_connect
from tests.support.upstreams import WsEchoUpstream

pytestmark = pytest.mark.integration

IDLE = 65.0


def test_websocket_carries_messages_both_ways_for_over_60s(nginx: NginxRun,
                                                           ws_upstream: WsEchoUpstream) -> None:
    ws = ws_connect(nginx.https_port, "acme.loomworks.app", "/websocket", context=nginx.tls_context())
    try:
        assert ws.getstatus() == 101
        started = time.monotonic()
        ws.send("hello")
        assert ws.recv() == "echo:hello"
        ws.send(f"push-after {IDLE}")
        ws.settimeout(IDLE + 15)
        assert ws.recv() == "push"  # server -> client after the silence
        ws.settimeout(10)
        for i in range(3):
            ws.send(f"after-idle {i}")
            assert ws.recv() == f"echo:after-idle {i}"
        assert time.monotonic() - started >= 60
    finally:
        ws.close()
