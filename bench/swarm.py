"""Section `swarm`: the Swarm stack (swarm/docker-stack.yml) on this machine: requests/s through
nginx with 1 and with 3 Odoo replicas (20 logged-in clients, page loads and JSON-RPC writes,
tests/support/load.py), and a rolling update of the 3 replicas under that load: its duration and
its failed requests (goal 0).

Honest about the machine: every replica shares the same 2 cores, so more replicas buy
availability here, not throughput; the ratio says what they cost.

Correctness: no failed request during the rolling update.
"""

from __future__ import annotations

import time

from bench import Context, say
from bench.report import BenchFailure, Row
from tests.support.compose import dev_secret, docker
from tests.support.images import build, tag
from tests.support.load import Load
from tests.support.swarm import SwarmStack

CLIENTS = 20


def throughput(st: SwarmStack, seconds: float) -> tuple[float, int]:
    """2xx answers per second over ``seconds`` of load, and the failures."""
    ld = Load(st.url(), "loomworks", dev_secret("admin_password"), clients=CLIENTS).start()
    t0 = time.monotonic()
    time.sleep(seconds)  # the measurement window (the load runs in its threads meanwhile)
    ld.stop()
    took = time.monotonic() - t0
    return sum(r.ok for r in ld.results) / took, len(ld.failures())


def run(ctx: Context) -> list[Row]:
    seconds = 20 if ctx.quick else 60
    for name in ("erp", "postgres", "nginx", "redis"):
        build(tag(name))
    st = SwarmStack(replicas=3).up()
    res: dict = {}
    ctx.raw["swarm"] = res
    try:
        docker("service", "scale", "--detach=false", f"{st.service('odoo')}=1", timeout=600)
        st.wait_converged("odoo")
        res["rps_1"], res["fail_1"] = throughput(st, seconds)
        say(f"  1 replica: {res['rps_1']:.1f} req/s")
        docker("service", "scale", "--detach=false", f"{st.service('odoo')}=3", timeout=900)
        st.wait_converged("odoo")
        res["rps_3"], res["fail_3"] = throughput(st, seconds)
        say(f"  3 replicas: {res['rps_3']:.1f} req/s")
        ld = Load(st.url(), "loomworks", dev_secret("admin_password"), clients=CLIENTS).start()
        t0 = time.monotonic()
        docker("service", "update", "--detach=false", "--force", st.service("odoo"), timeout=1800)
        st.wait_converged("odoo")
        res["update_s"] = time.monotonic() - t0
        ld.stop()
        res["update_requests"], res["update_failed"] = ld.count(), len(ld.failures())
        say(f"  rolling update: {res['update_s']:.0f} s, {res['update_failed']} failed of {ld.count()}")
    finally:
        st.destroy()
    rows = [
        Row("7 swarm", "requests/s through nginx, 3 Odoo replicas (20 clients)", round(res["rps_3"], 1),
            "req/s", round(res["rps_1"], 1), "the same stack with 1 replica", better="higher",
            note="2 cores shared by every replica"),
        Row("7 swarm", "rolling update of 3 replicas under 20 clients", round(res["update_s"], 1), "s",
            note="start-first, one at a time, 20 s monitor each"),
        Row("7 swarm", "failed requests during the rolling update", res["update_failed"], "",
            note=f"of {res['update_requests']} (goal 0)"),
    ]
    if res["update_failed"]:
        raise BenchFailure(f"{res['update_failed']} failed requests during the rolling update", rows)
    return rows
