"""One license statement: SPDX ``LGPL-3.0-or-later`` wherever the project states its license."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
SELF = Path(__file__).resolve().relative_to(REPO).as_posix()  # names every spelling it looks for
STATEMENT = "LGPL-3.0-or-later"
# An Odoo manifest's license key takes Odoo's own identifier; "LGPL-3" is its only spelling.
MANIFEST_KEY = re.compile(r"""["']license["']\s*:\s*["']LGPL-3["']""")
URL = re.compile(r"(?:https?://|image:: )\S+")
LICENSE_WORDS = re.compile(r"\b(?:A?GPL|LGPL)[-\w.]*(?: or later)?|GNU (?:Lesser )?General Public License",
                           re.I)


def statements() -> dict[str, list[str]]:
    files = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    found: dict[str, list[str]] = {}
    for name in files.decode().split("\0"):
        path = REPO / name
        if not name or name in ("LICENSE", SELF) or not path.is_file() or path.is_symlink():
            continue
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        text = URL.sub("", MANIFEST_KEY.sub("", text))  # a link is not a statement
        if hits := [m.group(0) for m in LICENSE_WORDS.finditer(text)]:
            found[name] = hits
    return found


def test_every_license_statement_is_the_same():
    found = statements()
    assert {"pyproject.toml", "docker/Dockerfile", "addons/loomworks_health/__init__.py"} <= set(found)
    # the OCI labels of the four images, the Python project, every file header and README
    other = {f: odd for f, hits in found.items() if (odd := [h for h in hits if h != STATEMENT])}
    assert not other, other


def test_the_license_file_is_the_lgpl_3_with_the_gpl_3_it_supplements():
    text = (REPO / "LICENSE").read_text()
    assert f"SPDX-License-Identifier: {STATEMENT}" in text
    assert "GNU LESSER GENERAL PUBLIC LICENSE\n                       Version 3, 29 June 2007" in text
    assert "GNU GENERAL PUBLIC LICENSE\n                       Version 3, 29 June 2007" in text
