"""arm64: the four images build for linux/arm64 from the same Dockerfiles, and the ERP image
starts to a passing /web/health against the arm64 PostgreSQL image, all emulated
(BuildKit + Debian's qemu-user-static through binfmt_misc) on an amd64 host.

Slow (every arm64 instruction is emulated: the Odoo image's pip step dominates), so it runs
only through `make arm64` (which prepares the emulation and the arm64 base image, then sets
LWTEST_ARM64=1); otherwise it says once why it skips."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.support.containers import ErpLab, wait_health
from tests.support.images import GPU_DRIVERS, IMAGES, build, tag

pytestmark = [pytest.mark.docker, pytest.mark.odoo]

ARM64_BASE = os.environ.get("ARM64_BASE_IMAGE", "loomworks/debian-arm64:bookworm-slim")
QEMU = Path("/proc/sys/fs/binfmt_misc/qemu-aarch64")

if os.environ.get("LWTEST_ARM64") != "1":
    pytest.skip("arm64 builds are emulated and slow: run `make arm64`", allow_module_level=True)


def arm64_tag(name: str) -> str:
    return f"{tag(name)}-arm64"


@pytest.fixture(scope="module")
def arm64_images(docker_client, odoo_tree) -> dict[str, str]:
    assert QEMU.is_file() and "enabled" in QEMU.read_text(), \
        f"{QEMU} is not registered: run .ci/arm64-emulation (as root)"
    docker_client.images.get(ARM64_BASE)  # made by `make arm64` (docker/build-base-image)
    built = {}
    for name in ("postgres", "redis", "nginx", "erp"):
        built[name] = build(arm64_tag(name), options=["--platform", "linux/arm64"],
                            build_args={"BASE_IMAGE": ARM64_BASE})
        assert IMAGES[name]  # the same Dockerfile as the amd64 image
    return built


def test_every_image_is_built_for_arm64(docker_client, arm64_images):
    for name, image in arm64_images.items():
        attrs = docker_client.images.get(image).attrs
        assert (attrs["Os"], attrs["Architecture"]) == ("linux", "arm64"), name
    # libsass's binding is built against Debian's libsass there (no aarch64 wheel on PyPI).
    sass = "import sass; print(sass.compile(string='a{b{c:d}}', output_style='compressed'))"
    script = f'uname -m; dpkg --print-architecture; python -c "{sass}"'
    out = docker_client.containers.run(arm64_images["erp"], ["bash", "-c", script], entrypoint=[],
                                       remove=True).decode().split()
    assert out == ["aarch64", "arm64", "a", "b{c:d}"], out
    found = docker_client.containers.run(arm64_images["erp"], ["bash", "-c", f"{GPU_DRIVERS}; true"],
                                         entrypoint=[], remove=True).decode()
    assert found.count("No such file") == 3, found  # dpkg-slim.cfg's excludes hold on arm64 too


@pytest.fixture(scope="module")
def lab(docker_client, arm64_images) -> Iterator[ErpLab]:
    lab = ErpLab(docker_client, image=arm64_images["postgres"], erp_image=arm64_images["erp"])
    try:
        yield lab.start(timeout=600)
    finally:
        lab.cleanup()


def test_arm64_erp_starts_to_a_passing_health_check(lab: ErpLab):
    c = lab.erp()
    wait_health(c, "healthy", timeout=1200)
    r = requests.get(lab.url(c, "/web/health"), timeout=30)
    assert r.status_code == 200 and r.json()["status"] == "pass", r.text


def test_arm64_nginx_renders_its_configuration_and_is_healthy(lab: ErpLab, arm64_images):
    """nginx sizes server_names_hash_bucket_size from the CPU: emulated arm64 says 32, which
    the configuration's names outgrow; the configuration fixes it at 64."""
    c = lab.container(arm64_images["nginx"], role="nginx", network=lab.net)
    wait_health(c, "healthy", timeout=300)
