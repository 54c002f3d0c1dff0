"""Section `start`: `docker compose up` to all four services healthy (empty volumes, then a
restart with the volumes kept; per service, the engine's first health_status: healthy event),
and the migration check on an unchanged restart (container run to registry loaded, exit)
against Odoo's `-u all` on the same database with the same image (what Bitnami's image runs on
every start)."""

from __future__ import annotations

import time

from bench import Context, say
from bench.report import BenchFailure, Row, median
from tests.support.compose import SERVICES, EventRecorder, Stack
from tests.support.containers import logs
from tests.support.images import build, tag


def measure(st: Stack, rec: EventRecorder) -> dict[str, float]:
    """Seconds from `up` to all healthy, and to each service's first healthy event."""
    since, t0 = time.time_ns(), time.monotonic()
    st.up()
    st.wait_healthy(timeout=900)
    out = {"all": time.monotonic() - t0}
    for s in SERVICES:
        times = rec.times(s, "health_status: healthy", since)
        out[s] = (min(times) - since) / 1e9 if times else float("nan")
    say("  seconds from `up` to healthy: " + ", ".join(f"{k} {v:.1f}" for k, v in out.items()))
    return out


def one_shot(ctx: Context, env: dict[str, str], *odoo_args: str) -> tuple[float, str]:
    """An ERP container running `odoo ARGS` on `bench` from `docker run` to its exit: seconds, log."""
    t0 = time.monotonic()
    c = ctx.erp(ctx.lab(), env, command=["odoo", *odoo_args], healthcheck=None)
    rc = c.wait(timeout=900)["StatusCode"]
    took = time.monotonic() - t0
    out = logs(c)
    c.remove(v=True)
    say(f"  AUTO_MIGRATE={env['AUTO_MIGRATE']} odoo {' '.join(odoo_args)}: {took:.2f} s, exit {rc}")
    if rc != 0:
        raise BenchFailure(f"`odoo {' '.join(odoo_args)}` exited {rc}:\n{out[-3000:]}")
    return took, out


def migration_rows(ctx: Context, runs: int) -> list[Row]:
    once = ("-d", "bench", "--stop-after-init", "--no-http")
    check, plain = ({"WORKERS": "0", "LOG_LEVEL": "info", "AUTO_MIGRATE": v} for v in ("true", "false"))
    one_shot(ctx, plain, *once)  # warm-up (page cache, PostgreSQL)
    res: dict[str, list[float]] = {"check": [], "plain": [], "update_all": []}
    ctx.raw["start"]["migration_s"] = res
    for i in range(runs):
        say(f"migration run {i + 1}/{runs}: checksum check, no check, -u all")
        took, out = one_shot(ctx, check, *once)
        if "migration: up to date (bench)" not in out:
            raise BenchFailure(f"unchanged restart did not report 'migration: up to date':\n{out[-3000:]}")
        res["check"].append(took)
        res["plain"].append(one_shot(ctx, plain, *once)[0])
        res["update_all"].append(one_shot(ctx, plain, "-u", "all", *once)[0])
    m_check, m_plain, m_upd = (median(res[k]) for k in ("check", "plain", "update_all"))
    return [
        Row("2 start", "unchanged restart with migration check: container run to registry loaded, exit",
            m_check, "s", m_upd, "Odoo `-u all` on the same database, same image", note=f"median of {runs}"),
        Row("2 start", "the check's own cost (above minus the same run without any check)",
            max(m_check - m_plain, 0.0), "s", max(m_upd - m_plain, 0.0), "`-u all` minus the same run"),
    ]


def run(ctx: Context) -> list[Row]:
    for name in ("erp", "postgres", "nginx", "redis"):
        build(tag(name))
    say("stack: docker compose up on empty volumes, then down + up (volumes kept)")
    st = Stack()
    rec = EventRecorder(ctx.client, st.project)
    try:
        fresh = measure(st, rec)
        st.down()
        restart = measure(st, rec)
    finally:
        rec.stop()
        st.destroy()
    ctx.raw["start"] = {"stack": {"fresh": fresh, "restart": restart}}
    return [
        Row("2 start", "whole stack `docker compose up` to all 4 healthy, empty volumes", fresh["all"], "s",
            note=f"odoo healthy at {fresh['odoo']:.1f} s"),
        Row("2 start", "whole stack restart (down, up; volumes kept) to all healthy", restart["all"], "s",
            note=f"odoo healthy at {restart['odoo']:.1f} s"),
        *migration_rows(ctx, 1 if ctx.quick else 3)]
