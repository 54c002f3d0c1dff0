#!/usr/bin/env python3
"""Time from `docker compose up -d` to all four services healthy.

Two scenarios on a throwaway Compose project (free loopback ports, own volumes):
  fresh    - empty volumes: PostgreSQL initdb, Odoo creates + initialises DB_NAME
  restart  - `docker compose down` (volumes kept), then `up` again
Per service, the engine's health_status events give when each became healthy
(offset from the `up` call). Uses already-built images (LOOMWORKS_TAG, default
`test`: run the stack tests or `docker compose build` first).

  .venv/bin/python bench/stack_bench.py [--runs N] [--tag TAG] [--dev]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import docker
from tests.stack.compose import SERVICES, EventRecorder, Stack


def measure(st: Stack, rec: EventRecorder) -> dict[str, float]:
    since = time.time_ns()
    start = time.monotonic()
    st.up()
    st.wait_healthy(timeout=900)
    total = time.monotonic() - start
    out = {"all": total}
    for s in SERVICES:
        times = rec.times(s, "health_status: healthy", since)
        out[s] = (min(times) - since) / 1e9 if times else float("nan")
    return out


def fmt(row: dict[str, float]) -> str:
    return "  ".join(f"{k}={v:6.1f}s" for k, v in row.items())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=1, help="fresh+restart cycles (default 1)")
    ap.add_argument("--tag", default="test", help="image tag (LOOMWORKS_TAG), default test")
    ap.add_argument("--dev", action="store_true", help="with docker-compose.dev.yml")
    args = ap.parse_args()
    files = ("docker-compose.yml", "docker-compose.dev.yml") if args.dev else ("docker-compose.yml",)
    client = docker.from_env()
    results: dict[str, list[dict[str, float]]] = {"fresh": [], "restart": []}
    for i in range(args.runs):
        st = Stack(files=files, tag=args.tag)
        rec = EventRecorder(client, st.project)
        try:
            results["fresh"].append(measure(st, rec))
            print(f"run {i + 1} fresh:   {fmt(results['fresh'][-1])}", flush=True)
            st.down()
            results["restart"].append(measure(st, rec))
            print(f"run {i + 1} restart: {fmt(results['restart'][-1])}", flush=True)
        finally:
            rec.stop()
            st.destroy()
    print("\nseconds from `docker compose up -d` to healthy (median over runs; per service = its "
          "first health_status: healthy event)")
    for scenario, rows in results.items():
        med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
        print(f"{scenario:8s} {fmt(med)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
