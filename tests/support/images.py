"""Build the project's images with the Docker CLI (BuildKit), once per session.

The docker SDK's ``images.build`` uses the legacy builder, which has no secret or
cache mounts, so builds go through ``docker build``. When the host trusts a CA
bundle that containers do not (TLS-intercepting proxy), it is passed as the
BuildKit secret ``ca`` and never lands in a layer.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")
ODOO_CONTEXT = REPO / "odoo-src"  # gitignored; the Dockerfile copies it when present
# The tag the test session builds and runs (LOOMWORKS_TAG for Compose): several checkouts
# on one engine keep apart with LWTEST_TAG.
TAG = os.environ.get("LWTEST_TAG", "test")

# image name -> (dockerfile, default target)
IMAGES: dict[str, tuple[str, str | None]] = {
    "erp": ("docker/Dockerfile", "runtime"),
    "erp-dev": ("docker/Dockerfile", "dev"),
    "postgres": ("postgres/Dockerfile", None),
    "nginx": ("nginx/Dockerfile", None),
    "redis": ("redis/Dockerfile", None),
    "dev-mail": ("docker/dev-mail/Dockerfile", None),  # the dev override's mail catcher
}


def tag(name: str) -> str:
    """The session's tag of loomworks/<name> (``erp``, ``postgres``, ...)."""
    return f"loomworks/{name}:{TAG}"


def ensure_base_image() -> None:
    """debian:bookworm-slim, built from a Debian mirror when it cannot be pulled."""
    subprocess.run([str(REPO / "docker" / "build-base-image")], check=True)


def prepare_odoo_context(tree: Path) -> None:
    """Hard-link (same filesystem) or copy the Odoo tree into ./odoo-src for offline builds."""
    marker = ODOO_CONTEXT / ".source"
    if marker.is_file() and marker.read_text() == str(tree):
        return
    shutil.rmtree(ODOO_CONTEXT, ignore_errors=True)
    tmp = ODOO_CONTEXT.with_name("odoo-src.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    r = subprocess.run(["cp", "-al", f"{tree}/.", str(tmp)], capture_output=True, check=False)
    if r.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(tree, tmp, symlinks=True, ignore=shutil.ignore_patterns(".git"))
    shutil.rmtree(tmp / ".git", ignore_errors=True)
    (tmp / ".source").write_text(str(tree))
    tmp.rename(ODOO_CONTEXT)


# The PDF renderer of the ERP images the tests build (docker/README.md "PDF reports"): the
# image's default, wkhtmltox, is downloaded from GitHub, which the machines these tests run on
# cannot reach; PDF_RENDERER=wkhtmltox in the environment builds the default where it can.
PDF_RENDERER = os.environ.get("PDF_RENDERER") or "debian"
# Lists Mesa's GPU drivers, LLVM and Z3 in an ERP image (three "No such file" lines when absent:
# docker/conf/dpkg-slim.cfg keeps them out, wkhtmltopdf renders offscreen).
GPU_DRIVERS = "cd /usr/lib/ && ls *-linux-gnu/dri/*.so *-linux-gnu/libLLVM* *-linux-gnu/libz3.so* 2>&1"


def build_args_for_host() -> list[str]:
    args: list[str] = []
    if HOST_CA.is_file():
        args += ["--secret", f"id=ca,src={HOST_CA}"]
    return args


def _docker_build(tag: str, dockerfile: str | None, target: str | None, build_args: dict[str, str] | None,
                  context: Path, options: Sequence[str]) -> subprocess.CompletedProcess:
    default_file, default_target = IMAGES.get(tag.removeprefix("loomworks/").split(":")[0], (None, None))
    dockerfile = dockerfile or default_file
    target = target or default_target
    assert dockerfile, f"no Dockerfile known for {tag}"
    cmd = ["docker", "build", *options, "-f", str(REPO / dockerfile), "-t", tag, *build_args_for_host()]
    if target:
        cmd += ["--target", target]
    if str(dockerfile).endswith(IMAGES["erp"][0]):  # the ERP Dockerfile, here or in a copied context
        build_args = {"PDF_RENDERER": PDF_RENDERER, **(build_args or {})}
    for k, v in (build_args or {}).items():
        cmd += ["--build-arg", f"{k}={v}"]
    cmd.append(str(context))
    env = {**os.environ, "DOCKER_BUILDKIT": "1"}
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if r.returncode != 0:
        raise RuntimeError(f"docker build {tag} failed:\n{r.stderr[-6000:]}")
    return r


def build(tag: str, *, dockerfile: str | None = None, target: str | None = None,
          build_args: dict[str, str] | None = None, context: Path = REPO, options: Sequence[str] = ()) -> str:
    """Build ``tag`` from the repository with BuildKit; returns the tag. ``options``: more
    `docker build` options (e.g. ``--no-cache``)."""
    _docker_build(tag, dockerfile, target, build_args, context, ["-q", *options])
    return tag


def build_log(tag: str, *, dockerfile: str | None = None, target: str | None = None,
              build_args: dict[str, str] | None = None, context: Path = REPO,
              options: Sequence[str] = ()) -> str:
    """Like ``build``, returning BuildKit's plain progress output (which steps ran, which were
    CACHED)."""
    return _docker_build(tag, dockerfile, target, build_args, context, ["--progress=plain", *options]).stderr
