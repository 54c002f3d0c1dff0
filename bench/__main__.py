"""`make bench`: every Loomworks benchmark beside its anchor, one Markdown table.

Sections (in this order; --only a,b selects; bench/README.md says what each measures):
  image     image size, cold build, rebuild after a one-line addon change, start to healthy
  start     `docker compose up` to all healthy; migration check vs. Odoo's `-u all`
  health    /web/health vs. Odoo's /web/health?db_server_status=1 at a fixed rate
  proxy     nginx over TLS vs. direct to Odoo (wrk); TLS handshakes/s; the edge's own cost
  tls       new TLS connections/s, full handshakes and resumed, vs. plain ones; CPU shares
  wal       archive-wal vs. the docs' gzip one-liner vs. pgBackRest; archiver lag
  shutdown  `docker stop` idle and with a request in flight vs. Odoo's threaded server
  backup    base backup and restore vs. pgBackRest; commit latency with WAL_STREAM off vs. on
  swarm     the Swarm stack: req/s with 1 vs 3 replicas; a rolling update's duration and failures

Writes bench/results/summary.md and summary.json, <section>.json and logs/<section>.log. Exits 1
when a correctness condition broke (the section is marked FAILED; the others still run).

  .venv/bin/python -m bench [--quick] [--only image,start,health,proxy,tls,wal,shutdown,backup,swarm]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
import traceback
from collections.abc import Callable

from bench import RESULTS, Context, backup, health, image, proxy, say, shutdown, start, swarm, tls, wal
from bench.report import BenchFailure, Row, loadavg, machine_facts, summary_md
from tests.support.images import ensure_base_image, prepare_odoo_context
from tests.support.odoo_tree import find_odoo_tree, why_missing

SECTIONS: dict[str, Callable[[Context], list[Row]]] = {
    "image": image.run, "start": start.run, "health": health.run, "proxy": proxy.run, "tls": tls.run,
    "wal": wal.run, "shutdown": shutdown.run, "backup": backup.run, "swarm": swarm.run,
}


def parse_only(text: str | None) -> list[str]:
    if not text:
        return list(SECTIONS)
    chosen = [s.strip() for s in text.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in SECTIONS]
    if unknown or not chosen:
        raise SystemExit(f"bench: --only: unknown section(s) {', '.join(unknown) or '(none)'}; "
                         f"choose from {', '.join(SECTIONS)}")
    return [s for s in SECTIONS if s in chosen]


class Tee(tuple):
    """stdout to the console and a section's log: Tee((sys.stdout, log))."""

    def write(self, text: str) -> int:
        return min(s.write(text) for s in self)

    def flush(self) -> None:
        for s in self:
            s.flush()


def run_section(name: str, ctx: Context) -> tuple[list[Row], str | None]:
    """The section's rows, and why it FAILED (None when it did not); its output to logs/<name>.log."""
    log = RESULTS / "logs" / f"{name}.log"
    with log.open("w") as fh, contextlib.redirect_stdout(Tee((sys.stdout, fh))):
        try:
            return SECTIONS[name](ctx), None
        except BenchFailure as exc:
            say(f"FAILED {name}: {exc}")
            return exc.rows, str(exc)
        except Exception as exc:  # a broken section must not stop the others
            traceback.print_exc(file=fh)
            say(f"FAILED {name}: {type(exc).__name__}: {exc} (traceback in {log})")
            return [], f"{type(exc).__name__}: {exc}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    default=os.environ.get("BENCH_QUICK", "").lower() in ("1", "true", "yes"),
                    help="shorter durations, fewer runs, no cold build (default from BENCH_QUICK)")
    ap.add_argument("--only", help=f"sections: {','.join(SECTIONS)} (default from BENCH_ONLY)")
    args = ap.parse_args(argv)
    sections = parse_only(args.only or os.environ.get("BENCH_ONLY"))
    tree = find_odoo_tree()
    if tree is None:
        print(f"bench: {why_missing()}", file=sys.stderr)
        return 2
    (RESULTS / "logs").mkdir(parents=True, exist_ok=True)
    for s in sections:  # never report a previous run's figures
        (RESULTS / f"{s}.json").unlink(missing_ok=True)
    ctx = Context(args.quick, tree)
    facts = machine_facts(ctx.client.version().get("Version", ""))
    mode = "quick (BENCH_QUICK=1)" if args.quick else "full"
    say(f"{mode} run of {', '.join(sections)}; load average {facts['loadavg_start']}")
    ensure_base_image()
    prepare_odoo_context(tree)

    rows: list[Row] = []
    failures, timing, t_all = {}, {}, time.monotonic()
    try:
        for s in sections:
            t0 = time.monotonic()
            say(f"== {s} (load average {os.getloadavg()[0]:.2f})")
            section_rows, failure = run_section(s, ctx)
            rows += section_rows
            if failure:
                failures[s] = failure
            timing[s] = round(time.monotonic() - t0, 1)
            if s in ctx.raw:
                (RESULTS / f"{s}.json").write_text(json.dumps(ctx.raw[s], indent=2, default=str) + "\n")
            say(f"== {s} done in {timing[s]:.0f} s")
    finally:
        ctx.close()
    facts |= {"loadavg_end": loadavg(), "total_s": round(time.monotonic() - t_all, 1)}
    text = summary_md(mode, facts, rows, failures)
    (RESULTS / "summary.md").write_text(text)
    (RESULTS / "summary.json").write_text(json.dumps({
        "mode": mode, "sections": sections, "machine": facts, "section_seconds": timing,
        "rows": [r.to_dict() for r in rows], "failures": failures, "raw": ctx.raw,
    }, indent=2, default=str) + "\n")
    print("\n" + text)
    say(f"wrote {RESULTS}/summary.md and summary.json")
    for s, msg in failures.items():
        print(f"bench: {s} FAILED: {msg}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
