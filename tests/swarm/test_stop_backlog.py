"""A stopping Odoo answers every request it had accepted, also those still queued in its
listen backlog because every worker was busy (issue 13: with WORKERS=2 and three slow
requests, `docker stop` used to answer the third with nginx's 502).

The Compose stack with the test addon (slow route), WORKERS=2, and WORKERS + 2 slow requests
through nginx: two run, two wait in Odoo's accept queue (read from the kernel's table inside
the container), then `docker stop`.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator

import pytest

from tests.support.compose import TEST_ADDON, Stack, docker
from tests.support.net import get_in_background
from tests.support.wait import wait_for

pytestmark = [pytest.mark.docker, pytest.mark.odoo]

WORKERS = 2
SECONDS = "4.5"


@pytest.fixture(scope="module")
def stack(stack_tag: str) -> Iterator[Stack]:
    st = Stack(files=("docker-compose.yml", TEST_ADDON), tag=stack_tag, prefix="lwtest-swarm-stop",
               extra_env={"WORKERS": str(WORKERS)})
    st.start()
    try:
        yield st
    finally:
        st.destroy()


def accept_queue(st: Stack, port: int = 8069) -> int:
    """Connections waiting in the accept queue of Odoo's listener (/proc/net/tcp: a listening
    socket's rx_queue is its accept-queue length)."""
    rows = st.exec("odoo", "cat", "/proc/net/tcp").stdout.splitlines()[1:]
    for row in rows:
        f = row.split()
        if f[1].endswith(f":{port:04X}") and f[3] == "0A":
            return int(f[4].split(":")[1], 16)
    raise AssertionError(f"no listener on {port} in /proc/net/tcp")


def slow_requests(st: Stack, n: int) -> list[tuple[threading.Thread, dict]]:
    return [get_in_background(st.url(f"/lwtest/sleep?seconds={SECONDS}"), timeout=90) for _ in range(n)]


def test_docker_stop_serves_requests_queued_beyond_the_busy_workers(stack: Stack, drill):
    n = WORKERS + 2
    requests_ = slow_requests(stack, n)
    wait_for(lambda: stack.logs("odoo", tail=200).count(f"sleeping {SECONDS} s") >= WORKERS, 60,
             f"{WORKERS} slow requests running", interval=0.2)
    wait_for(lambda: accept_queue(stack) == n - WORKERS, 30, f"{n - WORKERS} connections queued",
             interval=0.2)
    started = time.monotonic()
    docker("stop", stack.container_id("odoo"))  # stop_grace_period (45 s) > GRACEFUL_TIMEOUT (30 s)
    took = time.monotonic() - started
    for t, _ in requests_:
        t.join(90)
    answers = [(r.get("status"), r.get("body") or repr(r.get("error"))) for _, r in requests_]
    assert answers == [(200, f"slept {SECONDS}")] * n, answers
    info = stack.inspect("odoo")
    logs = stack.logs("odoo", tail=300)
    assert info["State"]["ExitCode"] == 0, logs
    # the queued slow requests, and any health check Docker sent into the queue meanwhile
    queued = re.search(r"Stopping gracefully: (\d+) queued connection\(s\) will be served", logs)
    assert queued and int(queued[1]) >= n - WORKERS, logs
    # two rounds of requests were served after the stop began, within the grace
    assert took < 30, took
    drill(f"Compose: docker stop Odoo (WORKERS={WORKERS}) with {n} slow requests, {n - WORKERS} queued",
          f"{n}/{n} answered 200 (the queued ones too); exit code 0 after {took:.0f} s")


def test_a_connection_arriving_after_the_stop_began_is_not_served(stack: Stack):
    """The drain serves what was queued when the stop began, nothing later: the server does
    stop (a request sent once it is stopping gets an error, not an answer)."""
    docker("start", stack.container_id("odoo"))
    stack.wait_service_healthy("odoo", 300)
    stops_before = stack.logs("odoo", tail=2000).count("Stopping gracefully")
    busy_t, busy = get_in_background(stack.url("/lwtest/sleep?seconds=3.25"), timeout=60)
    wait_for(lambda: "sleeping 3.25 s" in stack.logs("odoo", tail=50), 60, "slow request running",
             interval=0.2)
    stopper = threading.Thread(target=docker, args=("stop", stack.container_id("odoo")), daemon=True)
    stopper.start()
    wait_for(lambda: stack.logs("odoo", tail=2000).count("Stopping gracefully") > stops_before, 30,
             "the stop began", interval=0.1)
    late_t, late = get_in_background(stack.url("/lwtest/sleep?seconds=0"), timeout=60)
    late_t.join(60)
    stopper.join(60)
    busy_t.join(60)
    assert busy.get("status") == 200, busy
    assert late.get("body") != "slept 0", late
