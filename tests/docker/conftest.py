"""Fixtures for the ERP image tests: a user-defined network, a throwaway PostgreSQL 15
container (Debian's packages on the local base image), and a factory for ERP containers.

Every container, network and temp dir is named ``lwtest-...`` and removed in finalizers.
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support.wait import wait_for

HERE = Path(__file__).resolve().parent
TEST_ADDON = HERE / "addons" / "lwtest_slow"
ADDON_MOUNT = "/opt/loomworks/addons/lwtest_slow"
# Short health checks for tests that are not about the image's defaults (nanoseconds).
FAST_HEALTH = {
    "test": ["CMD", "/usr/local/bin/docker-healthcheck.sh"],
    "interval": 2_000_000_000,
    "timeout": 3_000_000_000,
    "retries": 3,
    "start_period": 300_000_000_000,
}


def uid() -> str:
    return secrets.token_hex(4)


def logs(container) -> str:
    return container.logs(stdout=True, stderr=True).decode(errors="replace")


def health(container) -> str | None:
    container.reload()
    h = container.attrs["State"].get("Health")
    return h["Status"] if h else None


def wait_health(container, status: str, timeout: float) -> None:
    def check() -> bool:
        s = health(container)
        if container.status == "exited":
            raise AssertionError(f"container exited while waiting for {status}:\n{logs(container)[-4000:]}")
        return s == status

    wait_for(check, timeout, f"health={status}", interval=0.5)


def wait_log(container, text: str, timeout: float, count: int = 1) -> str:
    def check() -> str | None:
        out = logs(container)
        if out.count(text) >= count:
            return out
        container.reload()
        if container.status == "exited":
            raise AssertionError(f"container exited before logging {text!r}:\n{out[-4000:]}")
        return None

    return wait_for(check, timeout, f"log line {text!r}", interval=0.5)


def host_port(container, port: str = "8069/tcp") -> int:
    container.reload()
    return int(container.attrs["NetworkSettings"]["Ports"][port][0]["HostPort"])


@dataclass
class Pg:
    container: object
    name: str
    user: str = "odoo"
    password: str = field(default_factory=lambda: secrets.token_urlsafe(12))

    def stop(self) -> None:
        self.container.stop(timeout=10)

    def start(self) -> None:
        self.container.start()
        wait_for(self.ready, 30, "postgres container to accept connections", interval=0.3)

    def ready(self) -> bool:
        self.container.reload()
        if self.container.status == "exited":
            raise AssertionError(f"postgres container exited:\n{logs(self.container)[-3000:]}")
        r = self.container.exec_run(["pg_isready", "-q", "-h", "/tmp"], user="postgres")
        return r.exit_code == 0

    def psql(self, sql: str, db: str = "postgres") -> str:
        r = self.container.exec_run(["psql", "-h", "/tmp", "-XAtq", "-d", db, "-c", sql], user="postgres")
        assert r.exit_code == 0, r.output.decode()
        return r.output.decode().strip()


@pytest.fixture(scope="session")
def lw_network(docker_client) -> Iterator[str]:
    net = docker_client.networks.create(f"lwtest-net-{uid()}", driver="bridge")
    yield net.name
    net.reload()
    for c in net.containers:
        net.disconnect(c, force=True)
    net.remove()


@pytest.fixture(scope="session")
def pg_server_image(base_image: str) -> str:
    from tests.support.images import build

    return build("lwtest/pg15:test", dockerfile="tests/docker/pg/Dockerfile", context=HERE / "pg")


@pytest.fixture(scope="session")
def make_pg(docker_client, lw_network, pg_server_image) -> Iterator:
    created: list = []

    def make(name: str | None = None, start: bool = True) -> Pg:
        name = name or f"lwtest-pg-{uid()}"
        pg = Pg(container=None, name=name)
        pg.container = docker_client.containers.create(
            pg_server_image, name=name, network=lw_network,
            environment={"APP_USER": pg.user, "APP_PASSWORD": pg.password},
        )
        created.append(pg.container)
        if start:
            pg.start()
        return pg

    yield make
    for c in created:
        c.remove(force=True)


@pytest.fixture(scope="session")
def pg(make_pg) -> Pg:
    """The session's database server; tests that stop it start it again."""
    return make_pg()


@pytest.fixture(scope="session")
def addon_dir(tmp_path_factory) -> Path:
    """A copy of the test addon that tests may edit (bind-mounted into containers)."""
    d = tmp_path_factory.mktemp("lwtest-addon") / "lwtest_slow"
    shutil.copytree(TEST_ADDON, d)
    for p in [d, *d.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    d.parent.chmod(0o755)
    return d


@pytest.fixture(scope="session")
def run_erp(docker_client, erp_image, lw_network) -> Iterator:
    """Factory: start an ERP container on the test network (removed at session end)."""
    created: list = []

    def run(pg: Pg | None = None, env: dict[str, str] | None = None, *, addon: Path | None = None,
            healthcheck: dict | None = FAST_HEALTH, command=None, **kw):
        environment = {}
        if pg is not None:
            environment.update(DB_HOST=pg.name, DB_USER=pg.user, DB_PASSWORD=pg.password)
        environment.update(env or {})
        volumes = dict(kw.pop("volumes", {}))
        if addon is not None:
            volumes[str(addon)] = {"bind": ADDON_MOUNT, "mode": "ro"}
        c = docker_client.containers.run(
            erp_image, command=command, name=f"lwtest-erp-{uid()}", detach=True, network=lw_network,
            environment=environment, volumes=volumes, healthcheck=healthcheck,
            ports={"8069/tcp": ("127.0.0.1", None)}, **kw,
        )
        created.append(c)
        return c

    yield run
    import docker

    for c in created:
        with contextlib.suppress(docker.errors.NotFound):
            c.remove(force=True, v=True)


@pytest.fixture(scope="session")
def secrets_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("lwtest-secrets")
    d.chmod(0o755)
    return d


def secret_file(directory: Path, name: str, value: str) -> dict:
    """Write a secret readable by uid 1000; returns a volumes entry for /run/secrets/NAME."""
    p = directory / name
    p.write_text(value + "\n")
    p.chmod(0o644)
    return {str(p): {"bind": f"/run/secrets/{name}", "mode": "ro"}}


@pytest.fixture(scope="session")
def seeded(pg, run_erp, addon_dir, secrets_dir) -> dict:
    """First start against an empty server: DB_NAME is created and initialised with the
    Loomworks addons (plus the test addon). Secrets come as *_FILE. Records the health
    states seen on the way."""
    admin_password = secrets.token_urlsafe(12)
    master = secrets.token_urlsafe(16)
    volumes = {**secret_file(secrets_dir, "admin", admin_password),
               **secret_file(secrets_dir, "master", master),
               **secret_file(secrets_dir, "dbpw", pg.password)}
    env = {"DB_HOST": pg.name, "DB_USER": pg.user, "DB_PASSWORD_FILE": "/run/secrets/dbpw",
           "DB_NAME": "lwtest", "ADMIN_PASSWORD_FILE": "/run/secrets/admin",
           "ODOO_ADMIN_PASSWD_FILE": "/run/secrets/master", "GRACEFUL_TIMEOUT": "30"}
    c = run_erp(None, env, addon=addon_dir, volumes=volumes)
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


@pytest.fixture(scope="session")
def erp_dev_image(base_image: str, odoo_tree: Path) -> str:
    from tests.support.images import build, prepare_odoo_context, tag

    prepare_odoo_context(odoo_tree)
    return build(tag("erp-dev"))
