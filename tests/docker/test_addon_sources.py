"""Build-time addon sources: the folders of addons-extra/ (e.g. cloned OCA repositories) land in
/opt/loomworks/extra-addons/<repo>, and their Python requirements (the repository's
requirements.txt, each module's, each manifest's external_dependencies) join the list the
builder's pip layer installs. Built for real with BuildKit, up to the two stages concerned."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.containers import Resources
from tests.support.images import REPO, build

pytestmark = pytest.mark.docker


@pytest.fixture
def made(docker_client) -> Iterator[Resources]:
    made = Resources(docker_client)
    yield made
    made.cleanup()


def module(root: Path, name: str, **manifest) -> Path:
    d = root / name
    d.mkdir(parents=True)
    (d / "__init__.py").write_text("")
    (d / "__manifest__.py").write_text(repr({"name": name, "version": "18.0.1.0.0", "depends": ["base"],
                                             "license": "LGPL-3", **manifest}) + "\n")
    return d


def build_stage(context: Path, target: str, tag: str) -> None:
    build(tag, dockerfile=str(context / "docker" / "Dockerfile"), target=target, context=context)


def test_addons_extra_repositories_and_their_requirements(made, docker_client, base_image, tmp_path):
    ctx = tmp_path / "ctx"
    shutil.copytree(REPO / "docker", ctx / "docker")
    shutil.copytree(REPO / "addons", ctx / "addons")
    shutil.copy(REPO / ".dockerignore", ctx / ".dockerignore")
    oca = ctx / "addons-extra" / "oca-web"
    (oca / "setup").mkdir(parents=True)  # setuptools-odoo's folder: no module
    (oca / "requirements.txt").write_text("# repository-wide\nlwtest-repo-req==1.0\n")
    (oca / ".git").mkdir()
    (oca / ".git" / "HEAD").write_text("ref: refs/heads/18.0\n")
    module(oca, "lwx_web_a", external_dependencies={"python": ["lwtest-manifest-req"]})
    (module(oca, "lwx_web_b") / "requirements.txt").write_text("lwtest-module-req>=2\n")
    module(oca, "lwx_web_old", installable=False, external_dependencies={"python": ["lwtest-not-wanted"]})
    module(ctx / "addons-extra" / "vendor", "lwx_vendor")

    reqs_tag = made.image_tag("addon-reqs")
    build_stage(ctx, "addon-requirements", reqs_tag)
    reqs = docker_client.containers.run(reqs_tag, ["cat", "/addon-requirements.txt"], remove=True).decode()
    # each line names who needs it: the addon, or the repository for its own requirements.txt
    assert reqs.splitlines() == ["lwtest-manifest-req  # lwx_web_a", "lwtest-module-req>=2  # lwx_web_b",
                                 "lwtest-repo-req==1.0  # oca-web"], reqs

    addons_tag = made.image_tag("addons")
    build_stage(ctx, "addons", addons_tag)
    listing = docker_client.containers.run(
        addons_tag, ["bash", "-c", "cd /opt/loomworks/extra-addons && find . -name __manifest__.py | sort; "
                     "test ! -e oca-web/.git && echo NO-GIT"], remove=True).decode()
    assert listing.split() == ["./oca-web/lwx_web_a/__manifest__.py", "./oca-web/lwx_web_b/__manifest__.py",
                               "./oca-web/lwx_web_old/__manifest__.py", "./vendor/lwx_vendor/__manifest__.py",
                               "NO-GIT"], listing
