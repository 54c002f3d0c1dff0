"""Run the drills and write their results table (Markdown) for the README.

    .venv/bin/python -m tests.support.drill_report               # run tests/drills, write the table
    .venv/bin/python -m tests.support.drill_report --no-run      # rebuild the table from the last run
    .venv/bin/python -m tests.support.drill_report -- -k faults  # extra pytest arguments after --
    .venv/bin/python -m tests.support.drill_report --tests tests/swarm --section swarm-drills

Each drill test appends one row (drill, outcome, seconds to recover, case) to a JSON-lines
file (``LW_DRILL_RESULTS``, see tests/support/drill.py); pytest's JUnit XML says which tests failed. A
failed or skipped drill is shown as such and the command exits non-zero: the table never
calls a drill passed that did not pass. Outcomes never say "lost" or "partial" (but "0 lost"):
a drill that loses anything fails instead, and the command refuses to write such a row; the
one exception is a row flagged ``expected_loss``, a drill that measures the loss the design
accepts (no WAL stream, data volume destroyed) and states it as a figure. The
section's header names the commit the drills ran on (``+ local changes`` when the tree
differed from it) and when they ran.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TMP = Path(os.environ.get("TMPDIR", "/tmp"))
FORBIDDEN = ("lost", "partial")
ZERO_LOST = re.compile(r"(?<![\d.,])0 lost\b")

# Edge cases and faults the component suites already prove; referenced, not repeated. Each
# name says what the named tests assert (tests/unit/test_drill_report.py checks they exist).
COVERED_ELSEWHERE = [
    ("edge: an invalid value of an Odoo image variable (one clear line naming it)",
     ["tests/docker/test_config.py::test_bad_values_rejected_with_one_clear_line"]),
    ("edge: value and *_FILE both set",
     ["tests/docker/test_config.py::test_both_value_and_file_is_an_error"]),
    ("edge: wrongly-owned data volume (Odoo)",
     ["tests/docker/test_config.py::test_foreign_owned_bind_mount_is_a_clear_error"]),
    ("edge: invalid nginx settings",
     ["tests/nginx/test_entrypoint.py::test_bad_environment_fails_with_one_clear_line"]),
    ("edge: malformed/expired/mismatched/wrong-domain certificate or key",
     ["tests/nginx/test_entrypoint.py::test_bad_mounted_certificate_fails_with_one_clear_line"]),
    ("edge: unwritable certificate volume",
     ["tests/nginx/test_entrypoint.py::test_unwritable_self_signed_directory_is_a_clear_error"]),
    ("edge: forged forwarding headers (nginx unit)",
     ["tests/nginx/test_proxy.py::test_forged_forwarding_headers_do_not_reach_odoo"]),
    ("edge: upload over 100 MB (nginx unit)",
     ["tests/nginx/test_proxy.py::test_upload_over_100mb_gets_a_clear_413"]),
    ("edge: wrong tenant by subdomain (nginx + odoo-bin on loopback)",
     ["tests/nginx/test_odoo.py::test_each_subdomain_sees_only_its_own_database",
      "tests/nginx/test_odoo.py::test_unknown_tenant_gets_no_database"]),
    ("edge: Redis without password / bad setting",
     ["tests/stack/test_redis.py::test_refuses_to_start_without_a_password",
      "tests/stack/test_redis.py::test_bad_setting_stops_with_one_clear_line"]),
    ("fault: Redis kill -9 with appendfsync always",
     ["tests/stack/test_redis.py::test_aof_always_survives_kill_9"]),
    ("fault: database outage on a bare Odoo container",
     ["tests/docker/test_runtime.py::test_database_outage_unhealthy_then_healthy_without_restart"]),
    ("restore: target beyond the end of the WAL, refused while the server runs, target before every backup "
     "(one clear line each, old data kept); backup chosen by target time; in place, the old cluster kept",
     ["tests/postgres/test_recovery.py::test_pitr_drill_in_place_loses_nothing"]),
    ("restore: corrupt archive file, unreadable base backup (one clear line each, old data kept)",
     ["tests/postgres/test_recovery.py::test_corrupt_archive_file_and_unreadable_backup_keep_the_old_data"]),
    ("edge: empty data volume beside a WAL archive (one clear line, no cluster); ALLOW_NEW_CLUSTER=true "
     "moves the old archive aside",
     ["tests/postgres/test_image.py::test_empty_data_next_to_an_archive_is_a_restore_not_a_first_start"]),
    ("fault: PostgreSQL kill -9 under a write burst; archive unwritable or full (loopback cluster)",
     ["tests/postgres/test_archiving_cluster.py::test_kill9_during_write_burst_leaves_no_gap",
      "tests/postgres/test_archiving_cluster.py::test_failed_archiving_keeps_segment_and_catches_up"]),
    ("backup: retention pruning (BACKUP_RETENTION=2), verify-archive passes, then a point-in-time restore "
     "to just after the oldest kept backup",
     ["tests/postgres/test_retention.py::test_prune_keeps_what_the_kept_backups_need_then_pitr_after_the_oldest"]),
    ("backup: scheduled backups on an interval; a failed cycle is one log line and an unhealthy service",
     ["tests/postgres/test_retention.py::test_scheduler_backs_up_on_its_interval_prunes_and_reports_failures"]),
    ("backup: corrupt filestore archive file, bad restore-filestore input: one clear line",
     ["tests/postgres/test_filestore_archive.py::test_bad_input_and_a_corrupt_archive_file_fail_in_one_line"]),
]


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()


def run_identity() -> dict[str, str]:
    """The commit the drills run on (``+ local changes`` when the tree differs) and the time (UTC)."""
    commit = git("rev-parse", "--short", "HEAD")
    if git("status", "--porcelain"):
        commit += " + local changes"
    return {"commit": commit, "at": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")}


def run_pytest(results: Path, junit: Path, extra: list[str], tests: str = "tests/drills") -> int:
    results.unlink(missing_ok=True)
    env = dict(os.environ, LW_DRILL_RESULTS=str(results))
    cmd = [sys.executable, "-m", "pytest", tests, "-q", "-p", "no:randomly", f"--junitxml={junit}",
           *extra]
    return subprocess.run(cmd, cwd=REPO, env=env, check=False).returncode


def junit_outcomes(junit: Path) -> dict[str, str]:
    """nodeid-ish key (file::name) -> passed|failed|skipped."""
    out: dict[str, str] = {}
    if not junit.exists():
        return out
    for case in ET.parse(junit).getroot().iter("testcase"):  # noqa: S314 - our own pytest wrote it
        key = f"{case.get('classname', '').replace('.', '/')}.py::{case.get('name')}"
        failed = case.find("failure") is not None or case.find("error") is not None
        out[key] = "failed" if failed else "skipped" if case.find("skipped") is not None else "passed"
    return out


def build_table(results: Path, junit: Path, covered: bool = True) -> tuple[str, bool]:
    raw = results.read_text().splitlines() if results.exists() else []
    rows = [json.loads(line) for line in raw if line.strip()]
    outcomes = junit_outcomes(junit)
    recorded = {r["test"] for r in rows}
    ok = bool(outcomes) and all(s == "passed" for s in outcomes.values())
    lines = ["| Drill | Outcome | Time to recover |", "|---|---|---|"]
    # parametrized cases with one outcome: one row, naming its cases
    merged: dict[tuple[str, str, str], list[str | None]] = {}
    for r in rows:
        state = outcomes.get(r["test"], "passed")
        outcome = r["outcome"] if state == "passed" else f"FAILED ({r['test']})"
        claims = ZERO_LOST.sub("", outcome.lower())
        if any(w in claims for w in FORBIDDEN) and not r.get("expected_loss"):
            raise SystemExit(f"refusing to write an outcome that says lost/partial: {outcome}")
        secs = "—" if r["recover_s"] is None else f"{r['recover_s']:.1f} s"
        merged.setdefault((r["drill"], outcome, secs), []).append(r.get("case"))
    for (name, outcome, secs), cases in merged.items():
        named = [c for c in cases if c is not None]
        if named:
            outcome += f" ({len(named)} case{'s' if len(named) > 1 else ''}: {', '.join(named)})"
        elif len(cases) > 1:
            outcome += f" ({len(cases)} cases)"
        lines.append(f"| {cell(name)} | {cell(outcome)} | {secs} |")
    for test, state in sorted(outcomes.items()):
        if state != "passed" and test not in recorded:
            lines.append(f"| {cell(test)} | {state.upper()} | — |")
    if not covered:
        return "\n".join(lines) + "\n", ok
    lines += ["", "Covered by the component suites (not repeated in the drills):", "", "| Drill | Where |",
              "|---|---|"]
    lines += [f"| {cell(name)} | {', '.join(f'`{w}`' for w in where)} |" for name, where in COVERED_ELSEWHERE]
    return "\n".join(lines) + "\n", ok


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


README = REPO / "README.md"


def update_readme(section: str, name: str = "drills") -> None:
    """Replace what stands between the ``<!-- NAME:begin -->`` / ``end`` markers in README.md."""
    BEGIN, END = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    text = README.read_text()
    head, sep, rest = text.partition(BEGIN)
    _, sep2, tail = rest.partition(END)
    if not (sep and sep2):
        raise SystemExit(f"README.md: markers {BEGIN} ... {END} not found")
    README.write_text(f"{head}{BEGIN}\n{section}{END}{tail}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", help="write the table to this file instead of README.md's drills section")
    ap.add_argument("--no-run", action="store_true", help="only rebuild the table from the last run")
    ap.add_argument("--tests", default="tests/drills", help="the drills to run (default tests/drills)")
    ap.add_argument("--section", default="drills",
                    help="README section (markers <!-- SECTION:begin/end -->) and `make SECTION`")
    ap.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    args = ap.parse_args(argv)
    WORK = TMP / f"lwtest-{args.section}-report"
    WORK.mkdir(exist_ok=True)
    results, junit, ident = WORK / "results.jsonl", WORK / "junit.xml", WORK / "run.json"
    if args.no_run:
        rc, run = 0, json.loads(ident.read_text())
    else:
        run = run_identity()  # before the run: the commit the drills run on
        ident.write_text(json.dumps(run))
        rc = run_pytest(results, junit, args.pytest_args, args.tests)
    table, ok = build_table(results, junit, covered=args.section == "drills")
    title = "Swarm drill results" if args.section != "drills" else "Drill results"
    header = (f"### {title} (last run: {run['at']}, commit {run['commit']})\n\n"
              f"Regenerate: `make {args.section}` (runs the drills and rewrites this section).\n\n")
    if args.out:
        Path(args.out).write_text(header + table)
    else:
        update_readme(header + table, args.section)
    print(header + table)
    return rc or (0 if ok else 1)


if __name__ == "__main__":
    sys.exit(main())
