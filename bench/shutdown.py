"""Section `shutdown`: `docker stop` of loomworks/erp idle and with a 10 s request in flight (the
tests' lwtest_slow addon) against the same image on Odoo's threaded server (WORKERS=0). Fails
unless loomworks/erp answers the request (200, "slept 10") and exits 0: `docker stop` returns
once the processes are gone, so no clock decides it; the outcome is polled after the stop."""

from __future__ import annotations

import time
from typing import Any

import requests

from bench import Context, say
from bench.report import BenchFailure, Row, median
from tests.support.containers import ErpLab, logs, wait_exited, wait_health, wait_log
from tests.support.net import get_in_background
from tests.support.wait import wait_for

ANCHOR = "same image, WORKERS=0 (Odoo's threaded server, odoo:18's default)"
STARTED = "lwtest: request started"


def stop_run(ctx: Context, lab: ErpLab, env: dict[str, str], inflight: bool) -> dict[str, Any]:
    c = ctx.erp(lab, {"GRACEFUL_TIMEOUT": "30", "AUTO_MIGRATE": "false", **env})
    wait_health(c, timeout=600)
    sleep = lab.url(c, "/lwtest/sleep?seconds=")
    for _ in range(3):  # warm the route (and the workers)
        requests.get(sleep + "0", timeout=30)
    if inflight:
        started = logs(c).count(STARTED)
        _, outcome = get_in_background(sleep + "10", timeout=60)
        wait_log(c, STARTED, 30, count=started + 1)
    t0 = time.monotonic()
    c.stop(timeout=45)
    out: dict[str, Any] = {"stop_s": time.monotonic() - t0, "exit_code": wait_exited(c)}
    if inflight:
        wait_for(lambda: outcome, 90, "the in-flight request's outcome")
        out["completed"] = outcome.get("status") == 200 and outcome.get("body") == "slept 10"
        out["request"] = {k: v if k != "error" else repr(v) for k, v in outcome.items()}
    c.remove(v=True)
    say(f"  {out}")
    return out


def run(ctx: Context) -> list[Row]:
    runs = 1 if ctx.quick else 3
    lab = ctx.lab()
    res: dict[str, list[dict[str, Any]]] = {}
    ctx.raw["shutdown"] = res
    for who, env in (("project", {}), ("anchor", {"WORKERS": "0"})):
        for inflight in (False, True):
            key = f"{who}_{'inflight' if inflight else 'idle'}"
            for i in range(runs):
                say(f"shutdown {key} {i + 1}/{runs}")
                res.setdefault(key, []).append(stop_run(ctx, lab, env, inflight))

    def med(key: str) -> float:
        return median([r["stop_s"] for r in res[key]])

    def done(key: str) -> str:
        return f"{sum(r['completed'] for r in res[key])}/{len(res[key])} completed"

    rows = [
        Row("6 shutdown", "`docker stop` idle", med("project_idle"), "s", med("anchor_idle"), ANCHOR,
            note=f"median of {runs}"),
        Row("6 shutdown", "`docker stop` with a 10 s request in flight", med("project_inflight"), "s",
            med("anchor_inflight"), ANCHOR, note="the request must complete"),
        Row("6 shutdown", "in-flight 10 s request answered 200 before the container stopped",
            done("project_inflight"), anchor=done("anchor_inflight"), anchor_name=ANCHOR),
    ]
    if lost := [r for r in res["project_inflight"] if not r["completed"]]:
        raise BenchFailure(f"loomworks/erp lost an in-flight request on docker stop: {lost}", rows)
    if bad_exit := [r for k in ("project_idle", "project_inflight") for r in res[k] if r["exit_code"] != 0]:
        raise BenchFailure(f"loomworks/erp exited non-zero on docker stop: {bad_exit}", rows)
    return rows
