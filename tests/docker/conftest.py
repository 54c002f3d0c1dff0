"""Fixtures for the ERP image tests: the kit's ERP lab (a private network, a loomworks/postgres
server and ERP containers, all lwtest-* and removed at the end), an editable copy of the test
addon, and the first start against the empty server."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.containers import ErpLab, Pg, addon_copy, health, logs, secret_file
from tests.support.wait import wait_for


@pytest.fixture(scope="session")
def lab(docker_client, postgres_image: str, erp_image: str) -> Iterator[ErpLab]:
    lab = ErpLab(docker_client, image=postgres_image, erp_image=erp_image)
    try:
        yield lab.start()
    finally:
        lab.cleanup()


@pytest.fixture(scope="session")
def pg(lab: ErpLab) -> Pg:
    """The session's database server; tests that stop it start it again."""
    assert lab.pg
    return lab.pg


@pytest.fixture(scope="session")
def addon_dir(tmp_path_factory) -> Path:
    """A copy of the test addon that tests may edit (bind-mounted into containers)."""
    return addon_copy(tmp_path_factory.mktemp("lwtest-addon"))


@pytest.fixture(scope="session")
def seeded(lab: ErpLab, pg: Pg, addon_dir: Path, tmp_path_factory) -> dict:
    """First start against an empty server: DB_NAME is created and initialised with the
    Loomworks addons (plus the test addon). Secrets come as *_FILE. Records the health
    states seen on the way."""
    admin_password = secrets.token_urlsafe(12)
    master = secrets.token_urlsafe(16)
    secrets_dir = tmp_path_factory.mktemp("lwtest-secrets")
    volumes = {**secret_file(secrets_dir, "admin", admin_password),
               **secret_file(secrets_dir, "master", master),
               **secret_file(secrets_dir, "dbpw", pg.password)}
    env = {"DB_HOST": pg.name, "DB_USER": pg.user, "DB_PASSWORD_FILE": "/run/secrets/dbpw",
           "DB_NAME": "lwtest", "ADMIN_PASSWORD_FILE": "/run/secrets/admin",
           "ODOO_ADMIN_PASSWD_FILE": "/run/secrets/master", "GRACEFUL_TIMEOUT": "30"}
    c = lab.erp(env, db=False, addon=addon_dir, volumes=volumes)
    seen: list[str] = []

    def healthy() -> bool:
        s = health(c)
        if not seen or seen[-1] != s:
            seen.append(s)
        if c.status == "exited":
            raise AssertionError(f"first start failed:\n{logs(c)[-5000:]}")
        return s == "healthy"

    started = time.monotonic()
    wait_for(healthy, 400, "first start to become healthy", interval=0.5)
    return {"container": c, "seen": seen, "admin_password": admin_password, "master": master,
            "db_password": pg.password, "first_start_s": time.monotonic() - started}
