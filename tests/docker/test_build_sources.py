"""The image's download routes, built for real with BuildKit: Odoo's official source
archive (ODOO_SHA256) and the PDF renderer (PDF_RENDERER: the patched wkhtmltox .deb,
checked against WKHTMLTOX_DEB_SHA256 or the pinned checksum, or Debian's wkhtmltopdf).

GitHub is not reachable from every build machine, so the archive and the package are
served from this host, on Docker's bridge gateway, through the same build args an
operator uses for a mirror (ODOO_ARCHIVE_URL, WKHTMLTOX_DEB_URL). The archive is the
real Odoo tree, packed the way GitHub packs it (one top-level directory).
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.containers import Resources
from tests.support.fileserver import docker_bridge_gateway, serve_dir
from tests.support.images import PDF_RENDERER, REPO

pytestmark = pytest.mark.docker


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@pytest.fixture(scope="module")
def context(tmp_path_factory, base_image) -> Path:
    """A build context without ./odoo-src: the Dockerfile takes its download route."""
    ctx = tmp_path_factory.mktemp("lwtest-ctx")
    shutil.copytree(REPO / "docker", ctx / "docker")
    return ctx


@pytest.fixture(scope="module")
def files(tmp_path_factory, docker_client) -> Iterator[tuple[Path, str]]:
    d = tmp_path_factory.mktemp("lwtest-files")
    with serve_dir(d, docker_bridge_gateway(docker_client)) as url:
        yield d, url


def docker_build(context: Path, target: str, tag: str, **args: str) -> subprocess.CompletedProcess:
    cmd = ["docker", "build", "--progress=plain", "-f", str(context / "docker" / "Dockerfile"),
           "--target", target, "-t", tag]
    for k, v in args.items():
        cmd += ["--build-arg", f"{k}={v}"]
    env = {**os.environ, "DOCKER_BUILDKIT": "1"}
    return subprocess.run([*cmd, str(context)], capture_output=True, text=True, env=env, check=False)


def in_image(docker_client, tag: str, script: str) -> str:
    out = docker_client.containers.run(tag, ["bash", "-c", script], entrypoint=[], user="root", remove=True)
    return out.decode(errors="replace")


@pytest.fixture
def tag(docker_client) -> Iterator[str]:
    made = Resources(docker_client)
    yield made.image_tag("build-route")
    made.cleanup()


# --- Odoo's source archive ---------------------------------------------------------


@pytest.fixture(scope="module")
def odoo_archive(files, odoo_tree: Path) -> tuple[str, str]:
    """The Odoo tree as GitHub serves it: odoo-<ref>/..., gzip. Returns (url, sha256)."""
    d, url = files
    archive = d / "odoo-lwtest.tar.gz"
    gzip = ["pigz", "-1"] if shutil.which("pigz") else ["gzip", "-1"]
    tar = ["tar", "-C", str(odoo_tree.parent), "--exclude=.git",
           f"--transform=s,^{odoo_tree.name},odoo-lwtest,", "-cf", "-", odoo_tree.name]
    with archive.open("wb") as out:
        packer = subprocess.Popen(tar, stdout=subprocess.PIPE)
        subprocess.run(gzip, stdin=packer.stdout, stdout=out, check=True)
        packer.stdout.close()
        assert packer.wait() == 0
    return f"{url}/{archive.name}", sha256(archive)


@pytest.mark.odoo
def test_odoo_archive_route_verifies_extracts_and_records_provenance(docker_client, context,
                                                                      odoo_archive, tag):
    url, digest = odoo_archive
    r = docker_build(context, "odoo-source", tag, ODOO_COMMIT="18.0", ODOO_ARCHIVE_URL=url,
                     ODOO_SHA256=digest, ODOO_LANGS="fr", PDF_RENDERER=PDF_RENDERER)
    assert r.returncode == 0, r.stderr[-4000:]
    assert f"{url}: sha256 {digest} matches ODOO_SHA256" in r.stderr
    # a branch name is not a pin: the build says so
    assert "WARNING ODOO_COMMIT=18.0 is not a commit id: the build is not pinned" in r.stderr
    out = in_image(docker_client, tag,
                   "cat /opt/odoo/.loomworks-source; test -x /opt/odoo/odoo-bin && echo HAS-ODOO-BIN; "
                   "grep -c 'version_info = (18, 0' /opt/odoo/odoo/release.py; "
                   "ls /opt/odoo/addons/account/i18n | tr '\\n' ' '; echo; stat -c %U /opt/odoo/odoo-bin")
    lines = out.splitlines()
    assert lines[0] == f"{url} sha256:{digest}"
    assert lines[1] == "HAS-ODOO-BIN" and lines[2] == "1"
    assert "fr.po" in lines[3] and "de.po" not in lines[3]  # odoo-trim ran on the download
    assert lines[4] == "root"  # extracted files belong to root, not the archive's uid


@pytest.mark.odoo
def test_odoo_archive_checksum_mismatch_fails_the_build(context, odoo_archive, tag):
    url, digest = odoo_archive
    wrong = "0" * 64
    r = docker_build(context, "odoo-source", tag, ODOO_ARCHIVE_URL=url, ODOO_SHA256=wrong,
                     PDF_RENDERER=PDF_RENDERER)
    assert r.returncode != 0
    expected = f"fetch-verified: error: ODOO_SHA256 mismatch for {url}: expected {wrong}, got {digest}"
    assert expected in r.stderr


# --- a wkhtmltox package ---------------------------------------------------------------


@pytest.fixture(scope="module")
def wkhtmltox_deb(files, tmp_path_factory) -> tuple[str, str]:
    """A package named and laid out like the wkhtmltopdf project's wkhtmltox .deb
    (/usr/local/bin/wkhtmltopdf), whose dependency on Debian's build apt must resolve."""
    d, url = files
    root = tmp_path_factory.mktemp("lwtest-deb") / "wkhtmltox"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(
        "Package: wkhtmltox\nVersion: 0.12.6.1-3~lwtest\nArchitecture: all\n"
        "Maintainer: Loomworks tests <tests@invalid>\nDepends: wkhtmltopdf\n"
        "Description: test package for the WKHTMLTOX_DEB_URL route\n")
    binary = root / "usr" / "local" / "bin" / "wkhtmltopdf"
    binary.parent.mkdir(parents=True)
    binary.write_text('#!/bin/sh\nexec /usr/bin/wkhtmltopdf "$@"\n')
    binary.chmod(0o755)
    deb = d / "wkhtmltox_0.12.6.1-3~lwtest_all.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "--build", str(root), str(deb)],
                   check=True, capture_output=True)
    return f"{url}/{deb.name}", sha256(deb)


# The sha256 the Dockerfile pins for the wkhtmltopdf project's bookworm package of the
# build machine's architecture (docker/bin/wkhtmltox-fetch).
PINNED = {"amd64": "98ba0d157b50d36f23bd0dedf4c0aa28c7b0c50fcdcdc54aa5b6bbba81a3941d",
          "arm64": "b6606157b27c13e044d0abbe670301f88de4e1782afca4f9c06a5817f3e03a9c"}


def host_arch() -> str:
    return subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True,
                          check=True).stdout.strip()


def test_wkhtmltox_route_installs_the_verified_package(docker_client, context, wkhtmltox_deb, tag):
    """The default renderer (no PDF_RENDERER given): the package is downloaded, verified,
    installed with its dependencies, and recorded as the image's renderer."""
    url, digest = wkhtmltox_deb
    r = docker_build(context, "base", tag, WKHTMLTOX_DEB_URL=url, WKHTMLTOX_DEB_SHA256=digest)
    assert r.returncode == 0, r.stderr[-4000:]
    assert f"sha256 {digest} matches WKHTMLTOX_DEB_SHA256" in r.stderr
    assert (f"PDF_RENDERER=wkhtmltox: wkhtmltox 0.12.6.1-3 (patched Qt) for {host_arch()} "
            f"from {url}") in r.stderr
    assert "PDF_RENDERER=debian" not in r.stderr
    out = in_image(docker_client, tag,
                   "dpkg-query -W -f='${Version}\\n' wkhtmltox; command -v wkhtmltopdf; "
                   "echo '<h1>route</h1>' > /tmp/a.html; "
                   "QT_QPA_PLATFORM=offscreen wkhtmltopdf -q /tmp/a.html /tmp/a.pdf; "
                   "head -c 5 /tmp/a.pdf; echo; "
                   "cat /usr/local/share/loomworks/pdf-renderer; "
                   "ls /tmp/wkhtmltox.deb /mnt/wkhtmltox.deb 2>&1 | grep -c 'No such file'")
    lines = out.splitlines()
    assert lines[0] == "0.12.6.1-3~lwtest"
    assert lines[1] == "/usr/local/bin/wkhtmltopdf"  # first on PATH, where Odoo looks
    assert lines[2].startswith("%PDF-")
    assert lines[3] == "wkhtmltox"
    assert lines[-1] == "2"  # the downloaded .deb is not left in the layer


def test_wkhtmltox_mirror_is_checked_against_the_pinned_checksum(context, wkhtmltox_deb, tag):
    """A mirror (WKHTMLTOX_DEB_URL without a checksum) must serve the very package the
    Dockerfile pins: a different file fails the build, whatever PDF_RENDERER allows."""
    url, digest = wkhtmltox_deb
    r = docker_build(context, "base", tag, WKHTMLTOX_DEB_URL=url)
    assert r.returncode != 0
    pinned = PINNED[host_arch()]
    assert (f"fetch-verified: error: WKHTMLTOX_DEB_SHA256 mismatch for {url}: "
            f"expected {pinned}, got {digest}") in r.stderr


def test_wkhtmltox_checksum_mismatch_fails_the_build(context, wkhtmltox_deb, tag):
    url, digest = wkhtmltox_deb
    wrong = "f" * 64
    r = docker_build(context, "base", tag, WKHTMLTOX_DEB_URL=url, WKHTMLTOX_DEB_SHA256=wrong)
    assert r.returncode != 0
    assert (f"fetch-verified: error: WKHTMLTOX_DEB_SHA256 mismatch for {url}: "
            f"expected {wrong}, got {digest}") in r.stderr
    assert "Debian's wkhtmltopdf" not in r.stderr.split("error:")[-1]  # no fallback advice


def test_offline_default_build_fails_and_says_how_to_build_offline(context, files, tag):
    """The package cannot be downloaded (here: the mirror answers 404): the default build
    does not fall back by itself, and says which setting allows it."""
    _, base = files
    url = f"{base}/absent/wkhtmltox_0.12.6.1-3.bookworm_{host_arch()}.deb"
    r = docker_build(context, "base", tag, WKHTMLTOX_DEB_URL=url)
    assert r.returncode != 0
    assert f"fetch-verified: error: cannot download {url}: (22)" in r.stderr
    assert ("wkhtmltox-fetch: error: the patched wkhtmltox (PDF_RENDERER=wkhtmltox, the default) "
            f"cannot be downloaded from {url}: give a mirror in WKHTMLTOX_DEB_URL, or build with "
            "PDF_RENDERER=debian to use Debian's wkhtmltopdf (reports without header and footer)") in r.stderr


def test_debian_renderer_is_loud_in_the_build_log_and_recorded(docker_client, context, tag):
    """The offline route: PDF_RENDERER=debian downloads nothing, warns in the build log and
    records the renderer (the label and the start warning: tests/docker/test_image.py)."""
    # a URL of its own: the renderer step runs (is not taken from the cache), so it logs
    r = docker_build(context, "base", tag, PDF_RENDERER="debian",
                     WKHTMLTOX_DEB_URL=f"http://unreachable.invalid/{secrets.token_hex(8)}.deb")
    assert r.returncode == 0, r.stderr[-4000:]
    assert ("wkhtmltox-fetch: WARNING: PDF_RENDERER=debian: this image renders PDF reports with "
            "Debian's wkhtmltopdf") in r.stderr
    assert "WITHOUT the company header and footer" in r.stderr
    assert "cannot download" not in r.stderr  # nothing was fetched
    out = in_image(docker_client, tag,
                   "cat /usr/local/share/loomworks/pdf-renderer; command -v wkhtmltopdf; "
                   "dpkg-query -W -f='${Status}\\n' wkhtmltox 2>&1 | grep -c 'no packages found'")
    assert out.splitlines() == ["debian", "/usr/bin/wkhtmltopdf", "1"]


def test_unknown_renderer_is_one_clear_line(context, tag):
    r = docker_build(context, "base", tag, PDF_RENDERER="weasyprint")
    assert r.returncode != 0
    assert "wkhtmltox-fetch: error: PDF_RENDERER must be wkhtmltox or debian, got 'weasyprint'" in r.stderr
