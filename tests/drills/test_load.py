"""Load drill: 50 clients for 60 s through nginx's local listener (login page and JSON-RPC in
turn): every request answered 200, no restart or OOM kill, memory under each container's limit."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.support.compose import SERVICES, Stack

pytestmark = [pytest.mark.docker, pytest.mark.odoo]

CLIENTS = 50
DURATION = 60.0


@pytest.fixture(scope="module")
def stack(stacks) -> Stack:
    return stacks()


def client(st: Stack, stop_at: float, results: list[tuple[str, int | str]]) -> None:
    http = requests.Session()
    login, rpc = st.url("/web/login"), st.url("/web/webclient/version_info")
    body = {"jsonrpc": "2.0", "method": "call", "id": 1, "params": {}}
    n = 0
    while time.monotonic() < stop_at:
        try:
            if n % 2 == 0:
                r = http.get(login, timeout=120)
                ok = r.status_code == 200 and "oe_login_form" in r.text
            else:
                r = http.post(rpc, json=body, timeout=120)
                ok = r.status_code == 200 and "server_serie" in r.json().get("result", {})
            results.append(("login" if n % 2 == 0 else "rpc", 200 if ok else r.status_code))
        except (requests.RequestException, ValueError) as exc:
            results.append(("error", type(exc).__name__))
        n += 1


def test_fifty_clients_for_a_minute_no_errors_memory_under_limits(stack: Stack, docker_client, drill):
    containers = {s: docker_client.containers.get(stack.container_id(s)) for s in SERVICES}
    limits = {s: c.attrs["HostConfig"]["Memory"] for s, c in containers.items()}
    assert all(limits.values()), limits
    restarts = {s: c.attrs["RestartCount"] for s, c in containers.items()}
    peak = dict.fromkeys(SERVICES, 0)
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            for s, c in containers.items():
                usage = c.stats(stream=False).get("memory_stats", {}).get("usage", 0)
                peak[s] = max(peak[s], usage)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    results: list[tuple[str, int | str]] = []
    stop_at = time.monotonic() + DURATION
    with ThreadPoolExecutor(CLIENTS) as pool:
        for _ in range(CLIENTS):
            pool.submit(client, stack, stop_at, results)
    done.set()
    sampler.join(timeout=60)

    failures = [r for r in results if r[1] != 200]
    logins = sum(1 for kind, _ in results if kind == "login")
    assert results and logins and not failures, f"{len(failures)} failed of {len(results)}: {failures[:10]}"
    for s, c in containers.items():
        c.reload()
        assert c.attrs["RestartCount"] == restarts[s], f"{s} restarted under load"
        assert not c.attrs["State"]["OOMKilled"], f"{s} was OOM-killed"
        assert 0 < peak[s] < limits[s], f"{s}: peak {peak[s]} bytes, limit {limits[s]}"
    stack.wait_service_healthy("odoo", timeout=60)
    mem = ", ".join(f"{s} {peak[s] / 2**20:.0f}/{limits[s] / 2**20:.0f} MB" for s in SERVICES)
    drill(f"load: {CLIENTS} clients for {DURATION:.0f} s through nginx (login page + JSON-RPC)",
          f"{len(results)}/{len(results)} answered 200, no restart; peak memory {mem}")
