"""The drills' report (tests/support/drill_report.py, `make drills`): the table built from the drills'
rows and pytest's JUnit XML, its header, its refusals, and the component-suite references."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from tests.support import drill_report as report

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
JUNIT = """<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest">
<testcase classname="tests.drills.test_x" name="test_a" />
<testcase classname="tests.drills.test_x" name="test_host[evil.example]" />
<testcase classname="tests.drills.test_x" name="test_host[a.b]" />
<testcase classname="tests.drills.test_x" name="test_host[a..b]" />
<testcase classname="tests.drills.test_x" name="test_b"><failure message="boom" /></testcase>
<testcase classname="tests.drills.test_x" name="test_c"><skipped message="no docker" /></testcase>
</testsuite></testsuites>
"""


def row(test: str, drill: str, outcome: str, recover_s: float | None = None, case: str | None = None) -> dict:
    return {"drill": drill, "outcome": outcome, "recover_s": recover_s, "case": case,
            "test": f"tests/drills/test_x.py::{test}"}


def build(tmp_path: Path, rows: list[dict], junit: str = JUNIT) -> tuple[str, bool]:
    results, xml = tmp_path / "results.jsonl", tmp_path / "junit.xml"
    results.write_text("".join(json.dumps(r) + "\n" for r in rows))
    xml.write_text(junit)
    return report.build_table(results, xml)


def test_cases_with_one_outcome_share_a_row_that_names_them(tmp_path: Path):
    table, _ = build(tmp_path, [
        row("test_host[evil.example]", "edge: Host", "dropped (444)", case="`evil.example`"),
        row("test_host[a.b]", "edge: Host", "dropped (444)", case="`a.b`"),
        row("test_host[a..b]", "edge: Host", "400 Bad Request", case="`a..b`"),
    ])
    assert "| edge: Host | dropped (444) (2 cases: `evil.example`, `a.b`) | — |" in table
    assert "| edge: Host | 400 Bad Request (1 case: `a..b`) | — |" in table


def test_failed_and_skipped_drills_are_shown_and_the_run_is_not_ok(tmp_path: Path):
    rows = [row("test_a", "drill a", "recovered", 3.21), row("test_b", "drill b", "fine")]
    table, ok = build(tmp_path, rows)
    assert "| drill a | recovered | 3.2 s |" in table
    assert "| drill b | FAILED (tests/drills/test_x.py::test_b) | — |" in table
    assert "| tests/drills/test_x.py::test_c | SKIPPED | — |" in table and not ok


def test_an_outcome_saying_lost_or_partial_is_refused(tmp_path: Path):
    with pytest.raises(SystemExit, match="lost/partial"):
        build(tmp_path, [row("test_a", "drill a", "3 writes lost")])


def test_zero_lost_is_allowed_but_a_figure_only_when_the_drill_expects_a_loss(tmp_path: Path):
    table, _ = build(tmp_path, [row("test_a", "drill a", "12/12 present, 0 lost")])
    assert "| drill a | 12/12 present, 0 lost | — |" in table
    for outcome in ("10 lost", "1.0 lost", "0 lost, then 2 lost"):
        with pytest.raises(SystemExit, match="lost/partial"):
            build(tmp_path, [row("test_a", "drill a", outcome)])
    measured = {**row("test_a", "drill a", "3 of 40 acknowledged commits lost"), "expected_loss": True}
    table, _ = build(tmp_path, [measured])
    assert "| drill a | 3 of 40 acknowledged commits lost | — |" in table


def test_a_pipe_in_a_cell_is_escaped(tmp_path: Path):
    table, _ = build(tmp_path, [row("test_a", "drill a", "a | b")])
    assert "| drill a | a \\| b | — |" in table


def test_header_names_the_commit_and_local_changes(monkeypatch: pytest.MonkeyPatch):
    answers = {("rev-parse", "--short", "HEAD"): "abc1234", ("status", "--porcelain"): " M README.md"}
    monkeypatch.setattr(report, "git", lambda *args: answers[args])
    run = report.run_identity()
    assert run["commit"] == "abc1234 + local changes"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", run["at"])
    answers[("status", "--porcelain")] = ""
    assert report.run_identity()["commit"] == "abc1234"


@pytest.mark.parametrize(("name", "where"), report.COVERED_ELSEWHERE,
                         ids=[n for n, _ in report.COVERED_ELSEWHERE])
def test_every_component_suite_reference_names_an_existing_test(name: str, where: list[str]):
    for ref in where:
        path, _, test = ref.partition("::")
        tree = ast.parse((REPO / path).read_text())
        names = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
        assert test in names, f"{name}: {ref} does not exist"


def test_every_security_default_names_an_existing_check():
    """README's Security defaults table: each row names the test(s) of tests/drills/test_security.py
    that check it, and every such test backs a row."""
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Security defaults\n", 1)[1].split("\n#", 1)[0]
    rows = [ln for ln in section.splitlines() if ln.startswith("| ") and not ln.startswith("| Default")]
    named = [re.findall(r"`(test_\w+)`", ln.rsplit("|", 2)[1]) for ln in rows]
    assert len(rows) >= 10 and all(named), rows
    tree = ast.parse((REPO / "tests" / "drills" / "test_security.py").read_text())
    tests = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")}
    assert {t for names in named for t in names} == tests
