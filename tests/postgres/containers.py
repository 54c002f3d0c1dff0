"""Containers of loomworks/postgres for the tests: named lwtest-*, removed with their volumes."""

from __future__ import annotations

import time
from contextlib import suppress
from dataclasses import dataclass, field

import docker
import docker.errors
from docker.models.containers import Container
from tests.postgres.helpers import unique
from tests.support.wait import wait_for

PASSWORD = "Super-Secret-pw-1"  # noqa: S105 (throwaway test credential)
APP_PASSWORD = "App-Secret-pw-2"  # noqa: S105
MOUNTS = {"data": "/var/lib/postgresql/data", "arch": "/wal_archive", "backups": "/backups"}


@dataclass
class Stack:
    """Tracks everything a test creates, so the finalizer removes exactly that."""

    client: docker.DockerClient
    image: str
    containers: list[Container] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)
    networks: list[str] = field(default_factory=list)

    def volume(self, role: str) -> str:
        name = unique(f"pg-{role}")
        self.client.volumes.create(name)
        self.volumes.append(name)
        return name

    def volume_set(self) -> dict[str, str]:
        return {role: self.volume(role) for role in MOUNTS}

    def network(self) -> str:
        name = unique("net")
        self.client.networks.create(name, driver="bridge")
        self.networks.append(name)
        return name

    @staticmethod
    def binds(vols: dict[str, str]) -> dict[str, dict[str, str]]:
        return {vols[role]: {"bind": MOUNTS[role], "mode": "rw"} for role in vols}

    def run(self, vols: dict[str, str], command: list[str] | None = None, env: dict[str, str] | None = None,
            network: str | None = None, alias: str | None = None, **kw) -> Container:
        environment = {"POSTGRES_PASSWORD": PASSWORD, "DB_USER": "odoo",
                       "DB_PASSWORD": APP_PASSWORD, "POSTGRES_DB": "loomworks"}
        environment.update(env or {})
        environment = {k: v for k, v in environment.items() if v is not None}
        c = self.client.containers.create(
            self.image, command=command, name=unique("pg"), environment=environment,
            volumes=self.binds(vols), ports={"5432/tcp": ("127.0.0.1", None)}, detach=True, **kw)
        self.containers.append(c)
        if network:
            self.client.networks.get(network).connect(c, aliases=[alias] if alias else None)
        c.start()
        return c

    def one_shot(self, vols: dict[str, str], command: list[str], env: dict[str, str] | None = None,
                 network: str | None = None, timeout: float = 90) -> tuple[int, str]:
        """Like `docker compose run --rm postgres <command>`: exit code and combined output."""
        c = self.run(vols, command=command, env=env, network=network)
        try:
            rc = c.wait(timeout=timeout)["StatusCode"]
        except Exception as e:  # requests' ReadTimeout: show what the container was doing
            logs = c.logs().decode()[-4000:]
            raise AssertionError(f"{command} did not finish in {timeout}s:\n{logs}") from e
        out = c.logs().decode()
        return rc, out

    def cleanup(self) -> None:
        for c in self.containers:
            with suppress(docker.errors.NotFound):
                c.remove(force=True, v=True)
        for n in self.networks:
            with suppress(docker.errors.NotFound):
                self.client.networks.get(n).remove()
        for v in self.volumes:
            with suppress(docker.errors.NotFound):
                self.client.volumes.get(v).remove(force=True)


def exec_sh(c: Container, cmd: list[str], user: str = "postgres") -> tuple[int, str]:
    r = c.exec_run(cmd, user=user)
    return r.exit_code, r.output.decode()


def psql(c: Container, sql: str, db: str = "postgres") -> str:
    rc, out = exec_sh(c, ["psql", "-U", "postgres", "-d", db, "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", sql])
    assert rc == 0, f"psql failed: {out}"
    return out.strip()


def wait_healthy(c: Container, timeout: float = 90) -> None:
    def ok() -> bool:
        c.reload()
        if c.status == "exited":
            raise AssertionError(f"container exited:\n{c.logs().decode()[-3000:]}")
        return exec_sh(c, ["docker-healthcheck.sh"])[0] == 0

    wait_for(ok, timeout, f"{c.name} to answer docker-healthcheck.sh", interval=0.3)


def host_port(c: Container) -> int:
    c.reload()
    return int(c.ports["5432/tcp"][0]["HostPort"])


def wait_exited(c: Container, timeout: float = 60) -> int:
    def done() -> bool:
        c.reload()
        return c.status == "exited"

    wait_for(done, timeout, f"{c.name} to exit", interval=0.2)
    return c.attrs["State"]["ExitCode"]


def server_now(c: Container) -> str:
    return psql(c, "SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00'")


def wait_clock_past(c: Container, instant: str) -> None:
    """Poll until the server's clock is strictly past ``instant`` (commit times must differ)."""
    wait_for(lambda: psql(c, f"SELECT now() > '{instant}'::timestamptz + interval '10 ms'") == "t",
             10, "the server clock to move past the noted time", interval=0.02)


def monotonic() -> float:
    return time.monotonic()
