"""Find the Odoo 18 source tree the tests and image builds use.

Order: ``$ODOO_SRC`` if set, else the per-user cache directory
``${XDG_CACHE_HOME:-~/.cache}/loomworks/odoo-18.0`` that ``make odoo`` fills from
Odoo's official source. Run as a script it prints the tree's path (nothing when
there is none), which is how the Makefile finds it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ODOO_SERIES = "18.0"


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "loomworks" / f"odoo-{ODOO_SERIES}"


def is_odoo_tree(path: Path) -> bool:
    return (path / "odoo-bin").is_file() and (path / "odoo" / "release.py").is_file()


def find_odoo_tree() -> Path | None:
    """The Odoo tree to use, or None. A set but wrong ODOO_SRC is an error."""
    env = os.environ.get("ODOO_SRC")
    if env:
        path = Path(env).expanduser().resolve()
        if not is_odoo_tree(path):
            raise SystemExit(f"ODOO_SRC={env}: not an Odoo tree (no odoo-bin and odoo/release.py)")
        return path
    path = cache_dir()
    return path if is_odoo_tree(path) else None


def why_missing() -> str:
    return (
        f"no Odoo tree: set ODOO_SRC to an Odoo {ODOO_SERIES} source tree "
        f"or run `make odoo` to fetch it into {cache_dir()}"
    )


if __name__ == "__main__":
    tree = find_odoo_tree()
    if tree:
        print(tree)
    sys.exit(0)
