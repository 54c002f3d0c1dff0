"""Every RUN of the four Dockerfiles fails at its first failing command: a bash SHELL with
-e and pipefail in each stage, the command written `set -eux; a; b; ...`, and none of the
constructs that let a failure through (`|| true`, `&&` chains, where bash ignores -e in any
compound command that is not the last; `; fi &&`)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
DOCKERFILES = ["docker/Dockerfile", "postgres/Dockerfile", "nginx/Dockerfile", "redis/Dockerfile"]
STRICT_SHELL = 'SHELL ["/bin/bash", "-Eeuo", "pipefail", "-c"]'


def instructions(path: Path) -> list[str]:
    """The file's instructions, continuation lines joined, comment lines dropped."""
    out: list[str] = []
    current = ""
    for line in path.read_text().splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        current += line.rstrip("\\").strip() + " "
        if not line.endswith("\\"):
            out.append(current.strip())
            current = ""
    return out


def stages(path: Path) -> list[list[str]]:
    """Instructions per stage (from each FROM to the next)."""
    found: list[list[str]] = []
    for ins in instructions(path):
        if ins.startswith("FROM "):
            found.append([])
        if found:
            found[-1].append(ins)
    return found


def run_command(ins: str) -> str:
    """A RUN's shell command, without its --mount/--network flags."""
    return re.sub(r"^RUN\s+(--\S+\s+)*", "", ins)


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_every_run_stops_at_its_first_failing_command(dockerfile: str):
    runs = [ins for ins in instructions(REPO / dockerfile) if ins.startswith("RUN ")]
    assert runs
    for ins in runs:
        cmd = run_command(ins)
        assert cmd.startswith("set -eux; "), f"{dockerfile}: RUN not 'set -eux; ...': {cmd[:80]}"
        assert not re.search(r"\|\|\s*(true|:)\b", cmd), f"{dockerfile}: '|| true' in: {cmd[:80]}"
        assert "&&" not in cmd, f"{dockerfile}: an && chain in: {cmd[:80]}"


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_every_stage_with_a_run_has_the_strict_shell(dockerfile: str):
    """Each stage with a RUN sets the strict SHELL itself or starts FROM a stage that did
    (a stage inherits its parent stage's SHELL, not a base image's)."""
    strict: set[str] = set()
    for stage in stages(REPO / dockerfile):
        m = re.match(r"FROM\s+(\S+)(?:\s+AS\s+(\S+))?", stage[0], re.I)
        assert m
        parent, name = m.group(1), m.group(2) or ""
        inherited = parent in strict
        for ins in stage[1:]:
            if ins.startswith("SHELL "):
                inherited = ins == STRICT_SHELL
            if ins.startswith("RUN "):
                assert inherited, f"{dockerfile}: stage {name or parent}: RUN before {STRICT_SHELL}"
        if inherited:
            strict.add(name)


def test_pdf_renderer_default_is_the_same_in_every_place():
    """The build arg (wkhtmltox stage and the label's stage) and wkhtmltox-fetch agree."""
    text = (REPO / "docker/Dockerfile").read_text()
    assert re.findall(r"^ARG PDF_RENDERER=(\S+)$", text, re.M) == ["wkhtmltox", "wkhtmltox"]
    assert 'org.loomworks.pdf-renderer="${PDF_RENDERER}"' in text
    assert "${PDF_RENDERER:-wkhtmltox}" in (REPO / "docker/bin/wkhtmltox-fetch").read_text()
