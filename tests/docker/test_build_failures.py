"""A build that cannot hide a failure: an addon whose Python requirement cannot be installed,
an addon with a syntax error and an unreadable manifest each fail the image build with a line
naming it. Built for real with BuildKit (the test kit's build helpers) from a context holding
the repository's docker/ and the broken addon; pip asks the real package index."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.containers import Resources
from tests.support.images import REPO, build, build_log

pytestmark = pytest.mark.docker

MISSING = "lwtest-no-such-distribution-7f3a"  # never published on PyPI


def make_context(root: Path, addon: str, files: dict[str, str], odoo_tree: Path | None = None) -> Path:
    """docker/ of the repository, one addon, and (for the builder stage) a minimal Odoo
    tree: odoo-bin and Odoo's real requirements.txt, so the cached pip layer of the
    session's image is reused and only the addons' step runs."""
    shutil.copytree(REPO / "docker", root / "docker")
    for name, text in files.items():
        path = root / "addons" / addon / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    if odoo_tree:
        src = root / "odoo-src"
        for d in ("addons", "odoo/addons"):
            (src / d).mkdir(parents=True)
        (src / "odoo-bin").write_text("#!/usr/bin/env python3\n")
        shutil.copy(odoo_tree / "requirements.txt", src / "requirements.txt")
    return root


@pytest.fixture
def tag(docker_client) -> Iterator[str]:
    made = Resources(docker_client)
    yield made.image_tag("build-failure")
    made.cleanup()


def failed_build(tag: str, target: str, context: Path) -> str:
    with pytest.raises(RuntimeError) as failure:
        build_log(tag, dockerfile="docker/Dockerfile", target=target, context=context)
    return str(failure.value)


@pytest.mark.odoo
def test_addon_requirement_that_cannot_be_installed_fails_the_build(tmp_path, odoo_tree, erp_image, tag):
    manifest = ('{"name": "lwtest bad requirement", "version": "18.0.1.0.0", "depends": ["base"], '
                f'"external_dependencies": {{"python": ["{MISSING}"]}}, "license": "LGPL-3"}}\n')
    ctx = make_context(tmp_path, "lwtest_badreq", {"__manifest__.py": manifest, "__init__.py": ""}, odoo_tree)
    out = failed_build(tag, "builder", ctx)
    assert (f"addon-requirements: error: cannot install {MISSING} (required by addon lwtest_badreq): "
            f"No matching distribution found for {MISSING}") in out


def test_addon_requirements_that_install_pass_and_are_named_in_the_file(tmp_path, docker_client, tag):
    """The requirements file the pip step reads names each requirement's addons (a comment
    pip ignores); the step that writes it runs without Odoo."""
    reqs = {"__manifest__.py": '{"name": "a", "external_dependencies": {"python": ["six"]}}\n',
            "requirements.txt": "six  # also here\nidna>=3\n"}
    ctx = make_context(tmp_path, "lwtest_reqs", reqs)
    build(tag, dockerfile="docker/Dockerfile", target="addon-requirements", context=ctx)
    out = docker_client.containers.run(tag, ["cat", "/addon-requirements.txt"], entrypoint=[], remove=True)
    assert out.decode().splitlines() == ["idna>=3  # lwtest_reqs", "six  # lwtest_reqs"]


def test_addon_syntax_error_fails_the_build(tmp_path, base_image, tag):
    files = {"__manifest__.py": '{"name": "lwtest broken", "depends": ["base"]}\n',
             "__init__.py": "from . import models\n",
             "models.py": "def broken(:\n    pass\n"}
    ctx = make_context(tmp_path, "lwtest_broken", files)
    out = failed_build(tag, "addons", ctx)
    assert "/opt/loomworks/addons/lwtest_broken/models.py" in out
    assert "SyntaxError" in out


def test_unreadable_manifest_fails_the_build_naming_it(tmp_path, base_image, tag):
    ctx = make_context(tmp_path, "lwtest_badmanifest", {"__manifest__.py": "{'name': 'x',,}\n"})
    out = failed_build(tag, "addon-requirements", ctx)
    assert ("addon-requirements: error: /src/addons/lwtest_badmanifest/__manifest__.py: "
            "not a Python dict literal") in out
