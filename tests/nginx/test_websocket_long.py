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

from tests.nginx.harness import NginxRun, WsEchoUpstream, ws_connect

pytestmark = pytest.mark.integration

IDLE = 65.0


def test_websocket_carries_messages_both_ways_for_over_60s(nginx: NginxRun,
                                                           ws_upstream: WsEchoUpstream) -> None:
    ws = ws_connect(nginx.https_port, "acme.loomworks.app", "/websocket", context=nginx.tls_context())
    try:
        assert ws.status == 101
        started = time.monotonic()
        ws.send("hello")
        assert ws.recv(timeout=10) == "echo:hello"
        ws.send(f"push-after {IDLE}")
        assert ws.recv(timeout=IDLE + 15) == "push"  # server -> client after the silence
        for i in range(3):
            ws.send(f"after-idle {i}")
            assert ws.recv(timeout=10) == f"echo:after-idle {i}"
        assert time.monotonic() - started >= 60
    finally:
        ws.close()
