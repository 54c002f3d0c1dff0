"""Run the addon's own pytest-odoo suite (HttpCase, --odoo-http) against a real database.

The outer session runs without the pytest-odoo plugin (pyproject: ``-p no:odoo``)
because its autouse session fixtures need a database. Here a database with
loomworks_health installed is prepared, and the addon's tests run in a second
pytest process with the plugin, its own empty ini file (so none of our addopts
apply) and the addon folder as rootdir.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.odoo import ADDONS, REPO

pytestmark = pytest.mark.odoo

ADDON_TESTS = ADDONS / "loomworks_health" / "tests"


def expected_tests() -> int:
    """Number of test methods in the addon's test classes (what the inner run must pass)."""
    count = 0
    for path in ADDON_TESTS.glob("test_*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                count += sum(
                    isinstance(item, ast.FunctionDef) and item.name.startswith("test_") for item in node.body
                )
    return count


def test_addon_pytest_odoo_suite(health_db, tmp_path: Path) -> None:
    expected = expected_tests()
    assert expected >= 10, f"only {expected} tests found in {ADDON_TESTS}"
    ini = tmp_path / "pytest.ini"
    ini.write_text("[pytest]\n")
    cmd = [
        sys.executable, "-m", "pytest", "-c", str(ini), "--rootdir", str(ADDONS),
        "-p", "odoo", "-p", "no:cacheprovider", "-o", "addopts=",
        "--odoo-config", str(health_db.conf), "--odoo-database", health_db.name, "--odoo-http",
        "--odoo-log-level", "warn", "-v", "-rA", str(ADDON_TESTS),
    ]
    r = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=900, check=False)
    output = r.stdout + r.stderr
    print(output)
    summary = r.stdout.strip().splitlines()[-1] if r.stdout.strip() else ""
    assert r.returncode == 0, f"inner pytest-odoo run failed (rc={r.returncode}): {summary}"
    passed = re.search(r"(\d+) passed", summary)
    assert passed and int(passed.group(1)) == expected, f"expected {expected} passed, got: {summary}"
    assert not re.search(r"failed|error|skipped", summary), summary
