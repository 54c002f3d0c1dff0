"""Run the drills and write their results table (Markdown) for the README.

    .venv/bin/python -m tests.drills.report                  # run tests/drills, write the table
    .venv/bin/python -m tests.drills.report --no-run         # rebuild the table from the last run
    .venv/bin/python -m tests.drills.report -- -k faults     # extra pytest arguments after --

Each drill test appends one row (drill, outcome, seconds to recover) to a JSON-lines file
(``LW_DRILL_RESULTS``, see conftest.py); pytest's JUnit XML says which tests failed. A
failed or skipped drill is shown as such and the command exits non-zero: the table never
calls a drill passed that did not pass. Outcomes never say "lost" or "partial": a drill
that loses anything fails instead, and the command refuses to write such a row.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
WORK = Path(os.environ.get("TMPDIR", "/tmp")) / "lwtest-drill-report"
FORBIDDEN = ("lost", "partial")

# Edge cases the component suites already prove; referenced, not repeated.
COVERED_ELSEWHERE = [
    ("edge: invalid value in every Odoo image variable",
     "tests/docker/test_config.py::test_bad_values_rejected_with_one_clear_line"),
    ("edge: value and *_FILE both set", "tests/docker/test_config.py::test_both_value_and_file_is_an_error"),
    ("edge: wrongly-owned data volume (Odoo)",
     "tests/docker/test_config.py::test_foreign_owned_bind_mount_is_a_clear_error"),
    ("edge: invalid nginx settings",
     "tests/nginx/test_entrypoint.py::test_bad_environment_fails_with_one_clear_line"),
    ("edge: malformed/expired/mismatched certificate",
     "tests/nginx/test_entrypoint.py::test_bad_mounted_certificate_fails_with_one_clear_line"),
    ("edge: unwritable certificate volume",
     "tests/nginx/test_entrypoint.py::test_unwritable_self_signed_directory_is_a_clear_error"),
    ("edge: forged forwarding headers (nginx unit)",
     "tests/nginx/test_proxy.py::test_forged_forwarding_headers_do_not_reach_odoo"),
    ("edge: upload over 100 MB (nginx unit)",
     "tests/nginx/test_proxy.py::test_upload_over_100mb_gets_a_clear_413"),
    ("edge: wrong tenant by subdomain",
     "tests/nginx/test_odoo.py::test_each_subdomain_sees_only_its_own_database"),
    ("edge: Redis without password / bad setting",
     "tests/stack/test_redis.py::test_refuses_to_start_without_a_password"),
    ("fault: Redis kill -9 with appendfsync always",
     "tests/stack/test_redis.py::test_aof_always_survives_kill_9"),
    ("fault: database outage on a bare Odoo container",
     "tests/docker/test_runtime.py::test_database_outage_unhealthy_then_healthy_without_restart"),
    ("fault: PostgreSQL crash / archive full or read-only (loopback cluster)", "tests/postgres/"),
]


def run_pytest(results: Path, junit: Path, extra: list[str]) -> int:
    results.unlink(missing_ok=True)
    env = dict(os.environ, LW_DRILL_RESULTS=str(results))
    cmd = [sys.executable, "-m", "pytest", "tests/drills", "-q", "-p", "no:randomly", f"--junitxml={junit}",
           *extra]
    return subprocess.run(cmd, cwd=REPO, env=env, check=False).returncode


def junit_outcomes(junit: Path) -> dict[str, str]:
    """nodeid-ish key (file::name) -> passed|failed|skipped."""
    out: dict[str, str] = {}
    if not junit.exists():
        return out
    for case in ET.parse(junit).getroot().iter("testcase"):  # noqa: S314 - our own pytest wrote it
        path = case.get("classname", "").replace(".", "/")
        key = f"{path}.py::{case.get('name')}"
        state = "passed"
        if case.find("failure") is not None or case.find("error") is not None:
            state = "failed"
        elif case.find("skipped") is not None:
            state = "skipped"
        out[key] = state
    return out


def build_table(results: Path, junit: Path) -> tuple[str, bool]:
    raw = results.read_text().splitlines() if results.exists() else []
    rows = [json.loads(line) for line in raw if line.strip()]
    outcomes = junit_outcomes(junit)
    recorded = {r["test"] for r in rows}
    ok = bool(outcomes) and all(s == "passed" for s in outcomes.values())
    lines = ["| Drill | Outcome | Time to recover |", "|---|---|---|"]
    merged: dict[tuple[str, str, str], int] = {}  # parametrized cases with one outcome: one row
    for r in rows:
        state = outcomes.get(r["test"], "passed")
        outcome = r["outcome"] if state == "passed" else f"FAILED ({r['test']})"
        if any(w in outcome.lower() for w in FORBIDDEN):
            raise SystemExit(f"refusing to write an outcome that says lost/partial: {outcome}")
        secs = "—" if r["recover_s"] is None else f"{r['recover_s']:.1f} s"
        key = (r["drill"], outcome, secs)
        merged[key] = merged.get(key, 0) + 1
    for (name, outcome, secs), n in merged.items():
        cases = f" ({n} cases)" if n > 1 else ""
        lines.append(f"| {name} | {outcome}{cases} | {secs} |")
    for test, state in sorted(outcomes.items()):
        if state != "passed" and test not in recorded:
            lines.append(f"| {test} | {state.upper()} | — |")
    lines += ["", "Covered by the component suites (not repeated in the drills):", "", "| Drill | Where |",
              "|---|---|"]
    lines += [f"| {name} | `{where}` |" for name, where in COVERED_ELSEWHERE]
    return "\n".join(lines) + "\n", ok


README = Path(__file__).resolve().parents[2] / "README.md"
BEGIN, END = "<!-- drills:begin -->", "<!-- drills:end -->"


def update_readme(section: str) -> None:
    """Replace what stands between the drills markers in README.md."""
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
    ap.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    args = ap.parse_args(argv)
    WORK.mkdir(exist_ok=True)
    results, junit = WORK / "results.jsonl", WORK / "junit.xml"
    rc = 0 if args.no_run else run_pytest(results, junit, args.pytest_args)
    table, ok = build_table(results, junit)
    header = (f"### Drill results (last run: {datetime.date.today()})\n\n"
              "Regenerate: `make drills` (runs the drills and rewrites this section).\n\n")
    if args.out:
        Path(args.out).write_text(header + table)
    else:
        update_readme(header + table)
    print(header + table)
    return rc or (0 if ok else 1)


if __name__ == "__main__":
    sys.exit(main())
