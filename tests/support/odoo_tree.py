"""Find the Odoo 18 source tree the tests and image builds use.

Order: ``$ODOO_SRC`` if set, else the per-user cache directory
``${XDG_CACHE_HOME:-~/.cache}/loomworks/odoo-18.0`` that ``make odoo`` fills from
Odoo's official source. Run as a script it prints the tree's path (nothing when
there is none), which is how the Makefile finds it; ``odoo_tree.py fetch`` is
``make odoo`` (``ODOO_REPO``, ``ODOO_REF``; ``ODOO_OPTIONAL=1``: an unreachable source
is a warning, not an error).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ODOO_SERIES = "18.0"
OFFICIAL_REPO = "https://github.com/odoo/odoo"


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


def _git(*args: str, timeout: float) -> subprocess.CompletedProcess:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
    return subprocess.run(["git", *args], capture_output=True, text=True, timeout=timeout, env=env,
                          check=False)


def fetch(repo: str, ref: str, optional: bool) -> int:
    """Shallow-clone ``ref`` of ``repo`` into the cache unless a tree is already found."""
    tree = find_odoo_tree()
    if tree:
        print(f"make odoo: Odoo tree already in {tree}")
        return 0
    dest = cache_dir()
    try:
        probe = _git("ls-remote", "--exit-code", "--heads", "--tags", repo, ref, timeout=60)
        reason = (probe.stderr.strip().splitlines() or [f"no branch or tag {ref}"])[-1]
    except subprocess.TimeoutExpired:
        probe, reason = None, "no answer within 60 s"
    if probe is None or probe.returncode != 0:
        level = "warning" if optional else "error"
        print(f"make odoo: {level}: Odoo's source {repo} ({ref}) is unreachable: {reason}; "
              f"set ODOO_SRC to a local Odoo {ODOO_SERIES} tree", file=sys.stderr)
        return 0 if optional else 1
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    dest.parent.mkdir(parents=True, exist_ok=True)
    print(f"make odoo: cloning {repo} ({ref}) into {dest}")
    clone = _git("clone", "--quiet", "--depth", "1", "--branch", ref, repo, str(tmp), timeout=3600)
    if clone.returncode != 0 or not is_odoo_tree(tmp):
        shutil.rmtree(tmp, ignore_errors=True)
        detail = (clone.stderr.strip().splitlines() or ["the clone holds no odoo-bin"])[-1]
        print(f"make odoo: error: cloning {repo} ({ref}) failed: {detail}", file=sys.stderr)
        return 1
    tmp.rename(dest)
    print(f"make odoo: Odoo tree in {dest}")
    return 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["fetch"]:
        env = os.environ
        return fetch(env.get("ODOO_REPO") or OFFICIAL_REPO, env.get("ODOO_REF") or ODOO_SERIES,
                     env.get("ODOO_OPTIONAL", "") in ("1", "true", "yes"))
    tree = find_odoo_tree()
    if tree:
        print(tree)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
