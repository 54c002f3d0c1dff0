"""The repository's own code is lint-clean: shellcheck, hadolint, ruff."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def tracked(*patterns: str) -> list[str]:
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", *patterns],
                         cwd=REPO, capture_output=True, text=True, check=True).stdout
    return [f for f in out.splitlines() if (REPO / f).is_file()]


def shell_scripts() -> list[str]:
    def shebang_shell(f: str) -> bool:
        with (REPO / f).open("rb") as fh:
            head = fh.readline(80)
        return head.startswith(b"#!") and head.rstrip().split(b"/")[-1].split(b" ")[-1] in (b"sh", b"bash")

    return [f for f in tracked() if not f.startswith(("odoo-src/", ".venv/"))
            and (f.endswith(".sh") or shebang_shell(f))]


def run(cmd: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=False)


def test_shell_scripts_are_shellcheck_clean():
    if not shutil.which("shellcheck"):
        pytest.fail("shellcheck is not installed (apt-get install shellcheck; .ci/setup-host does it)")
    scripts = shell_scripts()
    assert "docker/lib/common.sh" in scripts
    r = run(["shellcheck", "-x", "-f", "gcc", *scripts])
    assert r.returncode == 0, r.stdout + r.stderr


def test_dockerfiles_are_hadolint_clean():
    dockerfiles = [f for f in tracked() if Path(f).name == "Dockerfile" and not Path(f).is_symlink()]
    if not dockerfiles:
        pytest.skip("no Dockerfile yet")
    r = run([str(BIN / "hadolint"), "--no-color", *dockerfiles])
    assert r.returncode == 0, r.stdout + r.stderr


def test_python_is_ruff_clean():
    r = run([str(BIN / "ruff"), "check", "--no-cache", "."])
    assert r.returncode == 0, r.stdout + r.stderr
