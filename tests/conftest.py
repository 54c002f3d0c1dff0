"""Test platform: markers (pyproject.toml: unit, integration, odoo, docker), loud skips (what is
missing is said ONCE in the summary header, not once per test), and shared session fixtures."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import docker
from tests.support.images import TAG, build, ensure_base_image, prepare_odoo_context, tag
from tests.support.odoo_tree import find_odoo_tree, why_missing
from tests.support.pg import PgCluster

REPO = Path(__file__).resolve().parent.parent

_missing: dict[str, str] = {}


def _docker_missing() -> str | None:
    if not shutil.which("docker"):
        return "no docker CLI on PATH"
    r = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True)
    if r.returncode != 0:
        return "no Docker engine answers (start dockerd; .ci/setup-host does it)"
    return None


def pytest_configure(config: pytest.Config) -> None:
    tree = find_odoo_tree()
    if tree is None:
        # CI systems that have a tree set REQUIRE_ODOO=1: a lost tree then fails the run
        # instead of skipping every Odoo test.
        if os.environ.get("REQUIRE_ODOO", "") in ("1", "true", "yes"):
            raise pytest.UsageError(f"REQUIRE_ODOO is set but there is {why_missing()}")
        _missing["odoo"] = why_missing()
    config.odoo_tree = tree  # type: ignore[attr-defined]
    docker = _docker_missing()
    if docker:
        _missing["docker"] = docker


def pytest_report_header(config: pytest.Config) -> list[str]:
    lines = [f"odoo tree: {config.odoo_tree or '-'}"]  # type: ignore[attr-defined]
    lines += [f"SKIPPING all '{m}' tests: {why}" for m, why in _missing.items()]
    return lines


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for marker, why in _missing.items():
        skip = pytest.mark.skip(reason=f"{marker}: {why}")
        for item in items:
            if marker in item.keywords:
                item.add_marker(skip)


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    for marker, why in _missing.items():
        terminalreporter.write_line(f"SKIPPED all '{marker}' tests: {why}", yellow=True, bold=True)


@pytest.fixture(scope="session")
def odoo_tree(pytestconfig: pytest.Config) -> Path:
    tree = pytestconfig.odoo_tree  # type: ignore[attr-defined]
    if tree is None:
        pytest.skip(why_missing())
    return tree


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """A throwaway PostgreSQL 15 cluster on a random loopback port, shared by the session."""
    cluster = PgCluster().start()
    yield cluster
    cluster.destroy()


@pytest.fixture
def make_pg_cluster() -> Iterator:
    """Factory for private clusters a test may stop, kill or reconfigure."""
    clusters: list[PgCluster] = []

    def make(**settings: str) -> PgCluster:
        c = PgCluster(settings=settings)
        clusters.append(c)
        return c

    yield make
    for c in clusters:
        c.destroy()


# --- images (docker marker) -------------------------------------------------


@pytest.fixture(scope="session")
def docker_client():
    client = docker.from_env(timeout=300)
    yield client
    client.close()


@pytest.fixture(scope="session")
def base_image() -> str:
    ensure_base_image()
    return "debian:bookworm-slim"


def _image(name: str, odoo: bool = False, also: tuple[str, ...] = ()):
    """A session fixture ``<name>_image``: the project's image, built (an Odoo one needs the tree),
    after the images ALSO (built alongside it)."""

    def fixture(base_image: str, request: pytest.FixtureRequest) -> str:
        if odoo:
            prepare_odoo_context(request.getfixturevalue("odoo_tree"))
        for other in also:
            build(tag(other))
        return build(tag(name))

    return pytest.fixture(scope="session", name=f"{name.replace('-', '_')}_image")(fixture)


erp_image = _image("erp", odoo=True)
erp_dev_image = _image("erp-dev", odoo=True, also=("dev-mail",))  # and its mail catcher
postgres_image, nginx_image, redis_image = _image("postgres"), _image("nginx"), _image("redis")


@pytest.fixture(scope="session")
def stack_tag(erp_image: str, postgres_image: str, nginx_image: str, redis_image: str) -> str:
    """The four images of the stack, built: the LOOMWORKS_TAG a Compose stack runs."""
    return TAG
