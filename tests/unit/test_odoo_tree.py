"""Where the suite finds Odoo, `make odoo` (tests/support/odoo_tree.py fetch) and REQUIRE_ODOO."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "tests" / "support" / "odoo_tree.py"


def env_for(cache: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("ODOO_SRC", "REQUIRE_ODOO")}
    return {**env, "XDG_CACHE_HOME": str(cache), **extra}


def fake_odoo_repo(tmp_path: Path) -> Path:
    """A git repository with the two files that make an Odoo tree, on branch 18.0."""
    src = tmp_path / "upstream"
    (src / "odoo").mkdir(parents=True)
    (src / "odoo-bin").write_text("#!/usr/bin/env python3\n")
    (src / "odoo" / "release.py").write_text("version_info = (18, 0, 0, 'final', 0, '')\n")
    git = ["git", "-C", str(src), "-c", "user.name=t", "-c", "user.email=t@invalid"]
    subprocess.run(["git", "init", "-q", "-b", "18.0", str(src)], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "init"], check=True)
    return src


def fetch(cache: Path, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), "fetch"], env=env_for(cache, **extra),
                          capture_output=True, text=True, timeout=120, check=False)


def test_fetch_clones_the_tree_into_the_cache_once(tmp_path):
    repo = fake_odoo_repo(tmp_path)
    cache = tmp_path / "cache"
    r = fetch(cache, ODOO_REPO=str(repo), ODOO_REF="18.0")
    assert r.returncode == 0, r.stderr
    tree = cache / "loomworks" / "odoo-18.0"
    assert (tree / "odoo-bin").is_file() and not tree.with_name("odoo-18.0.tmp").exists()
    found = subprocess.run([sys.executable, str(SCRIPT)], env=env_for(cache), capture_output=True,
                           text=True, check=True)
    assert found.stdout.strip() == str(tree)
    again = fetch(cache, ODOO_REPO=str(tmp_path / "gone"))
    assert again.returncode == 0 and f"Odoo tree already in {tree}" in again.stdout


def test_unreachable_source_is_an_error_unless_optional(tmp_path):
    cache = tmp_path / "cache"
    nowhere = str(tmp_path / "no-such-repo")
    r = fetch(cache, ODOO_REPO=nowhere)
    assert r.returncode == 1
    [line] = r.stderr.strip().splitlines()
    assert line.startswith(f"make odoo: error: Odoo's source {nowhere} (18.0) is unreachable: ")
    r = fetch(cache, ODOO_REPO=nowhere, ODOO_OPTIONAL="1")
    assert r.returncode == 0 and "make odoo: warning:" in r.stderr and not (cache / "loomworks").exists()


def pytest_run(cache: Path, **extra: str) -> subprocess.CompletedProcess:
    args = [sys.executable, "-m", "pytest", "-q", "-m", "unit", "tests/unit/test_common_sh.py"]
    return subprocess.run(args, cwd=REPO, env=env_for(cache, **extra), capture_output=True, text=True,
                          timeout=300, check=False)


def test_without_a_tree_the_run_says_so_once_and_require_odoo_fails_it(tmp_path):
    r = pytest_run(tmp_path)
    assert r.returncode == 0, r.stdout[-2000:]
    assert r.stdout.count("SKIPPED all 'odoo' tests: no Odoo tree") == 1, r.stdout[-2000:]
    r = pytest_run(tmp_path, REQUIRE_ODOO="1")
    assert r.returncode != 0 and "REQUIRE_ODOO is set but there is no Odoo tree" in r.stdout + r.stderr
