"""The addon's own pytest-odoo suite (HttpCase, --odoo-http) on a real database. The outer session
runs with ``-p no:odoo`` (the plugin's autouse fixtures need a database), so the suite runs in a
second pytest with the plugin, an empty ini file (none of our addopts) and the addons as rootdir."""

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
    classes = [n for p in ADDON_TESTS.glob("test_*.py") for n in ast.walk(ast.parse(p.read_text()))
               if isinstance(n, ast.ClassDef)]
    return sum(isinstance(f, ast.FunctionDef) and f.name.startswith("test_") for c in classes for f in c.body)


def test_addon_pytest_odoo_suite(health_db, tmp_path: Path) -> None:
    expected = expected_tests()
    assert expected >= 10, f"only {expected} tests found in {ADDON_TESTS}"
    ini = tmp_path / "pytest.ini"
    ini.write_text("[pytest]\n")
    cmd = [sys.executable, "-m", "pytest", "-c", str(ini), "--rootdir", str(ADDONS), "-p", "odoo",
           "-p", "no:cacheprovider", "-o", "addopts=", "--odoo-config", str(health_db.conf),
           "--odoo-database", health_db.name, "--odoo-http", "--odoo-log-level", "warn", "-v", "-rA",
           str(ADDON_TESTS)]
    r = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=900, check=False)
    print(r.stdout + r.stderr)
    summary = r.stdout.strip().splitlines()[-1] if r.stdout.strip() else ""
    assert r.returncode == 0, f"inner pytest-odoo run failed (rc={r.returncode}): {summary}"
    passed = re.search(r"(\d+) passed", summary)
    assert passed and int(passed.group(1)) == expected, f"expected {expected} passed, got: {summary}"
    assert not re.search(r"failed|error|skipped", summary), summary
