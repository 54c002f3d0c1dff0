"""Fixtures for the nginx tests: stand-in upstreams and a running nginx."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.nginx import NginxRun
from tests.support.upstreams import HttpUpstream, WsEchoUpstream


@pytest.fixture(scope="session")
def nginx_binary() -> str:
    path = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(p).exists()), None)
    if path is None:
        pytest.skip("no nginx binary on this host (Debian: apt-get install nginx)")
    return path


@pytest.fixture(scope="session")
def http_upstream() -> Iterator[HttpUpstream]:
    up = HttpUpstream()
    yield up
    up.close()


@pytest.fixture(scope="session")
def ws_upstream() -> Iterator[WsEchoUpstream]:
    up = WsEchoUpstream()
    yield up
    up.close()


@pytest.fixture
def make_nginx(nginx_binary: str) -> Iterator[Callable[..., NginxRun]]:
    """Factory: ``make_nginx(**env)`` -> an unstarted NginxRun in its own directory."""
    runs: list[NginxRun] = []

    def make(**overrides: str) -> NginxRun:
        runs.append(run := NginxRun.create(nginx_binary, **overrides))
        return run

    yield make
    for run in runs:
        run.destroy()


@pytest.fixture(scope="module")
def nginx(nginx_binary: str, http_upstream: HttpUpstream, ws_upstream: WsEchoUpstream) -> Iterator[NginxRun]:
    """The project's config on loopback in front of the two stand-in upstreams."""
    run = NginxRun.create(nginx_binary, ODOO_HTTP_PORT=str(http_upstream.port),
                          ODOO_WS_PORT=str(ws_upstream.port))
    yield run.start()
    run.destroy()
