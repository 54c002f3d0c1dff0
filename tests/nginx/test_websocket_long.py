"""A websocket through nginx stays usable past nginx's 60 s default timeouts.

Done once, on /websocket: /longpolling is served by the same nginx location
(one regex, one set of directives), and test_proxy checks that both paths are
upgraded to the gevent port.

Schedule on ONE connection (no sleeps used as synchronisation; every receive
has a deadline):
  t=0     client -> server "echo" round trip
  t=0     client asks the server to push by itself after 65 s of silence:
          nothing crosses the connection for 65 s, longer than nginx's default
          proxy_read_timeout (60 s), which would close it
  t=65    server -> client "push"
  t>=65   client -> server "echo" round trips again
"""

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
