"""docker/bin/fetch-verified: the build-time download + sha256 check that both
optional downloads of the image (Odoo's source archive, a wkhtmltox .deb) go through."""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.fileserver import serve_dir

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "docker" / "bin" / "fetch-verified"
PAYLOAD = b"odoo-archive-bytes\n" * 100
GOOD = hashlib.sha256(PAYLOAD).hexdigest()


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[str]:
    d = tmp_path_factory.mktemp("files")
    (d / "odoo.tar.gz").write_bytes(PAYLOAD)
    with serve_dir(d) as url:
        yield url


def fetch(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, check=False,
                          env={**os.environ, "LOOMWORKS_LIB": str(REPO / "docker" / "lib")})


def test_matching_checksum_keeps_the_file(server, tmp_path):
    out = tmp_path / "o.tgz"
    r = fetch(f"{server}/odoo.tar.gz", GOOD.upper(), str(out), "ODOO_SHA256")
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == PAYLOAD and f"sha256 {GOOD} matches ODOO_SHA256" in r.stderr


def test_mismatch_fails_with_one_line_and_deletes_the_file(server, tmp_path):
    out = tmp_path / "o.tgz"
    r = fetch(f"{server}/odoo.tar.gz", "0" * 64, str(out), "ODOO_SHA256")
    assert r.returncode == 1
    assert r.stderr.strip() == (f"fetch-verified: error: ODOO_SHA256 mismatch for {server}/odoo.tar.gz: "
                                f"expected {'0' * 64}, got {GOOD}")
    assert not out.exists()


def test_required_checksum_missing_fails_before_downloading(server, tmp_path):
    out = tmp_path / "x.deb"
    r = fetch(f"{server}/odoo.tar.gz", "", str(out), "WKHTMLTOX_DEB_SHA256")
    assert r.returncode == 1 and not out.exists()
    assert r.stderr.strip() == ("fetch-verified: error: WKHTMLTOX_DEB_SHA256 is required when "
                                f"downloading {server}/odoo.tar.gz")


def test_optional_checksum_missing_warns_with_the_sum_to_pin(server, tmp_path):
    out = tmp_path / "o.tgz"
    r = fetch(f"{server}/odoo.tar.gz", "", str(out), "ODOO_SHA256", "optional")
    assert r.returncode == 0, r.stderr
    assert f"NOT verified (ODOO_SHA256 not given); its sha256 is {GOOD}" in r.stderr


@pytest.mark.parametrize(("url", "sha", "status", "message"), [
    ("ftp://example.invalid/x", GOOD, 1,
     "URL for ODOO_SHA256 must start with https:// or http://, got 'ftp://example.invalid/x'"),
    ("{server}/odoo.tar.gz", "abc", 1,
     "ODOO_SHA256 must be a sha256 (64 lowercase hex digits), got 'abc'"),
    # a failed download has its own status (3): the wkhtmltox step tells offline builds apart
    ("{server}/missing.tar.gz", GOOD, 3,
     "cannot download {server}/missing.tar.gz: (22) The requested URL returned error: 404"),
])
def test_bad_input_is_one_clear_line(server, tmp_path, url, sha, status, message):
    r = fetch(url.format(server=server), sha, str(tmp_path / "o"), "ODOO_SHA256")
    assert r.returncode == status
    assert r.stderr.strip() == "fetch-verified: error: " + message.format(server=server)
