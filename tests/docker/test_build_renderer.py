"""The session's ERP image records its PDF renderer (PDF_RENDERER, docker/README.md "PDF
reports") in a label and in /usr/local/share/loomworks/pdf-renderer, and a container of an
image with Debian's wkhtmltopdf says so in one warning line at start. The session builds
with tests/support/images.py's PDF_RENDERER (debian where GitHub cannot be reached)."""

from __future__ import annotations

import pytest

from tests.support.containers import logs
from tests.support.images import PDF_RENDERER

pytestmark = [pytest.mark.docker, pytest.mark.odoo]

WARNING = ("entrypoint: warning: PDF reports print WITHOUT company header and footer: this image has "
           "Debian's wkhtmltopdf (unpatched Qt), built with PDF_RENDERER=debian; rebuild with the "
           "default PDF_RENDERER=wkhtmltox for complete reports")


def test_label_and_file_name_the_renderer(docker_client, erp_image):
    labels = docker_client.images.get(erp_image).attrs["Config"]["Labels"]
    assert labels["org.loomworks.pdf-renderer"] == PDF_RENDERER
    out = docker_client.containers.run(
        erp_image, ["bash", "-c", "cat /usr/local/share/loomworks/pdf-renderer; wkhtmltopdf --version"],
        entrypoint=[], remove=True).decode()
    recorded, version = out.splitlines()[:2]
    assert recorded == PDF_RENDERER
    # the binary on PATH is the one recorded: only the wkhtmltox build says "patched qt"
    assert ("patched qt" in version) == (PDF_RENDERER == "wkhtmltox"), version


def test_start_warns_once_when_reports_lack_header_and_footer(seeded):
    lines = [line for line in logs(seeded["container"]).splitlines() if "PDF reports print" in line]
    assert lines == ([WARNING] if PDF_RENDERER == "debian" else [])
