"""Docker SDK helpers: container state and waits, commands through `docker exec`, a tracker
that names everything ``lwtest-*`` and removes exactly what it created, the project's own
loomworks/postgres as a throwaway database server, and an ERP lab (a private network, that
PostgreSQL and ERP containers) for tests/docker and the bench.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import shlex
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import docker.errors
from docker.models.containers import Container
from tests.support.net import host_port
from tests.support.wait import wait_for

REPO = Path(__file__).resolve().parents[2]
SLOW_ADDON = REPO / "tests" / "docker" / "addons" / "lwtest_slow"  # GET /lwtest/sleep?seconds=N
ADDONS_MOUNT = "/opt/loomworks/addons"

# loomworks/postgres: its variables and paths, in this one place.
PG_PASSWORD = "Super-Secret-pw-1"  # noqa: S105 (throwaway test credentials)
PG_APP_USER, PG_APP_PASSWORD = "odoo", "App-Secret-pw-2"
PG_MOUNTS = {"data": "/var/lib/postgresql/data", "arch": "/wal_archive", "backups": "/backups"}
PG_SOCKET = "/var/run/postgresql"


def pg_env(user: str = PG_APP_USER, password: str = PG_APP_PASSWORD) -> dict[str, str]:
    """The environment of a loomworks/postgres server with the application role ``user``."""
    return {"POSTGRES_PASSWORD": PG_PASSWORD, "DB_USER": user, "DB_PASSWORD": password,
            "POSTGRES_DB": "loomworks"}


def erp_healthcheck(interval: float = 2, timeout: float = 3, retries: int = 3) -> dict:
    """A shorter HEALTHCHECK for ERP containers whose test is not about the image's own."""
    return {"test": ["CMD", "/usr/local/bin/docker-healthcheck.sh"],
            "interval": int(interval * 1e9), "timeout": int(timeout * 1e9), "retries": retries,
            "start_period": 300_000_000_000}


FAST_HEALTH = erp_healthcheck()
HEALTH_POLL = 0.5  # how often wait_health (and the Stack's waits) look at Docker's health status


def unhealthy_within(healthcheck: Mapping) -> float:
    """The longest Docker takes to call a container unhealthy once every probe fails, from its
    HEALTHCHECK (``Config.Healthcheck``, nanoseconds): ``retries`` failed probes, each started
    ``interval`` after the previous one ended and lasting at most ``timeout``, plus one
    interval for the passing probe that may be in flight when the fault lands."""
    interval, timeout = healthcheck["Interval"] / 1e9, healthcheck["Timeout"] / 1e9
    return healthcheck["Retries"] * (interval + timeout) + interval


def engine_time(stamp: str) -> float:
    """A Docker timestamp (RFC 3339, UTC, up to nanoseconds: State.StartedAt, ...) as seconds
    since the epoch, comparable with time.time() on the engine's host."""
    head, _, frac = stamp.rstrip("Z").partition(".")
    return datetime.fromisoformat(head).replace(tzinfo=UTC).timestamp() + float(f"0.{frac or 0}")


def unique(role: str) -> str:
    return f"lwtest-{role}-{secrets.token_hex(4)}"


# --- one container -------------------------------------------------------------------------


def logs(c: Container) -> str:
    return c.logs(stdout=True, stderr=True).decode(errors="replace")


def exited(c: Container) -> bool:
    c.reload()
    return c.status in ("exited", "dead")


def health(c: Container) -> str | None:
    """Docker's health status (None: the container has no health check)."""
    c.reload()
    h = c.attrs["State"].get("Health")
    return h["Status"] if h else None


def _alive(c: Container, waiting_for: str) -> None:
    if exited(c):
        raise AssertionError(f"{c.name} exited while waiting for {waiting_for}:\n{logs(c)[-4000:]}")


def wait_health(c: Container, status: str = "healthy", timeout: float = 120) -> None:
    def check() -> bool:
        s = health(c)
        _alive(c, f"health={status}")
        return s == status

    wait_for(check, timeout, f"{c.name} health={status}", interval=HEALTH_POLL)


def wait_log(c: Container, text: str, timeout: float, count: int = 1) -> str:
    def check() -> str | None:
        out = logs(c)
        if out.count(text) >= count:
            return out
        _alive(c, f"the log line {text!r}")
        return None

    return wait_for(check, timeout, f"{c.name}: log line {text!r}", interval=0.5)


def wait_exited(c: Container, timeout: float = 60) -> int:
    """The exit code, once the container has stopped."""
    wait_for(lambda: exited(c), timeout, f"{c.name} to exit", interval=0.2)
    return c.attrs["State"]["ExitCode"]


def exec_sh(c: Container, cmd: list[str], user: str = "") -> tuple[int, str]:
    r = c.exec_run(cmd, user=user)
    return r.exit_code, r.output.decode(errors="replace")


def wait_exec(c: Container, cmd: list[str], timeout: float = 90, user: str = "") -> None:
    """Poll ``cmd`` inside the running container until it succeeds (e.g. a readiness probe)."""
    def ok() -> bool:
        _alive(c, " ".join(cmd))
        return exec_sh(c, cmd, user)[0] == 0

    wait_for(ok, timeout, f"{c.name}: {' '.join(cmd)}", interval=0.3)


def psql_cmd(sql: str, db: str = "postgres") -> list[str]:
    """psql as the superuser on the socket of a loomworks/postgres container (`docker exec`)."""
    return ["psql", "-h", PG_SOCKET, "-U", "postgres", "-d", db, "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", sql]


def psql(c: Container, sql: str, db: str = "postgres") -> str:
    """SQL on a loomworks/postgres container; the output."""
    rc, out = exec_sh(c, psql_cmd(sql, db), user="postgres")
    assert rc == 0, f"psql failed: {out}"
    return out.strip()


def pg_ready(c: Container, timeout: float = 90) -> None:
    wait_exec(c, ["docker-healthcheck.sh"], timeout, user="postgres")


def run_once(client, image: str, cmd: list[str], timeout: float = 120, **kw) -> tuple[int, str]:
    """Run ``cmd`` in a new container to its end: exit code and output (container removed)."""
    c = client.containers.run(image, cmd, detach=True, **kw)
    try:
        return c.wait(timeout=timeout)["StatusCode"], logs(c)
    finally:
        c.remove(force=True)


def secret_file(directory: Path, name: str, value: str) -> dict:
    """Write a secret any container user can read; a ``volumes`` entry for /run/secrets/NAME."""
    directory.chmod(0o755)
    p = directory / name
    p.write_text(value + "\n")
    p.chmod(0o644)
    return {str(p): {"bind": f"/run/secrets/{name}", "mode": "ro"}}


def make_readable(root: Path) -> Path:
    """Bind-mounted files for uid 1000 (the ERP image's user): world-readable."""
    for p in [root, *root.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    return root


def addon_copy(dest_parent: Path, src: Path = SLOW_ADDON) -> Path:
    """A copy of an addon that a test may edit, readable by the ERP image's user."""
    dest_parent.chmod(0o755)
    return make_readable(Path(shutil.copytree(src, dest_parent / src.name)))


# --- everything a test creates -----------------------------------------------------------


@dataclass
class Resources:
    """Containers, volumes, networks and image tags a test creates, each named lwtest-*;
    ``cleanup()`` removes exactly those."""

    client: docker.DockerClient
    containers: list[Container] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)
    networks: list[str] = field(default_factory=list)
    images: list[str] = field(default_factory=list)

    def container(self, image: str, command: list[str] | str | None = None, *, role: str = "c",
                  name: str | None = None, start: bool = True, network: str | None = None,
                  aliases: list[str] | None = None, **kw) -> Container:
        """A container named ``name`` (default lwtest-<role>-<random>), started unless ``start``
        is false, on ``network`` (with ``aliases``) instead of the default bridge."""
        if network and aliases:
            kw["networking_config"] = {network: self.client.api.create_endpoint_config(aliases=aliases)}
        c = self.client.containers.create(image, command, name=name or unique(role), detach=True,
                                          network=network, **kw)
        self.containers.append(c)
        if start:
            c.start()
        return c

    def volume(self, role: str = "vol") -> str:
        name = self.client.volumes.create(unique(role)).name
        self.volumes.append(name)
        return name

    def network(self, role: str = "net") -> str:
        name = self.client.networks.create(unique(role), driver="bridge").name
        self.networks.append(name)
        return name

    def image_tag(self, role: str = "img") -> str:
        tag = f"lwtest/{role}:{secrets.token_hex(4)}"
        self.images.append(tag)
        return tag

    def cleanup(self) -> None:
        gone = docker.errors.NotFound
        for c in self.containers:
            with contextlib.suppress(gone):
                c.remove(force=True, v=True)
        for n in self.networks:
            with contextlib.suppress(gone):
                self.client.networks.get(n).remove()
        for v in self.volumes:
            with contextlib.suppress(gone):
                self.client.volumes.get(v).remove(force=True)
        for i in self.images:
            with contextlib.suppress(gone):
                self.client.images.remove(i, force=True)


@dataclass
class Postgres(Resources):
    """loomworks/postgres containers (``image``) with the volumes a test gives them."""

    image: str = ""

    def volume_set(self) -> dict[str, str]:
        return {role: self.volume(f"pg-{role}") for role in PG_MOUNTS}

    def run(self, vols: Mapping[str, str] | None = None, command: list[str] | None = None,
            env: Mapping[str, str | None] | None = None, publish: bool = True, **kw) -> Container:
        """A server (or ``command``) on ``vols`` (role -> volume); ``env`` entries set to
        None are removed from the defaults (pg_env)."""
        environment = {k: v for k, v in {**pg_env(), **(env or {})}.items() if v is not None}
        volumes = {vols[role]: {"bind": PG_MOUNTS[role], "mode": "rw"} for role in vols or {}}
        ports = {"5432/tcp": ("127.0.0.1", None)} if publish else None
        return self.container(self.image, command, role="pg", environment=environment,
                              volumes={**volumes, **kw.pop("volumes", {})}, ports=ports, **kw)

    def one_shot(self, vols: Mapping[str, str], command: list[str], env: Mapping[str, str] | None = None,
                 network: str | None = None, timeout: float = 90) -> tuple[int, str]:
        """Like `docker compose run --rm postgres <command>`: exit code and combined output."""
        c = self.run(vols, command=command, env=env, network=network, publish=False)
        try:
            rc = c.wait(timeout=timeout)["StatusCode"]
        except Exception as e:  # requests' ReadTimeout: show what the container was doing
            raise AssertionError(f"{command} did not finish in {timeout}s:\n{logs(c)[-4000:]}") from e
        return rc, logs(c)

    # --- the PITR drills' steps (tests/postgres): a table ``drill`` of tags in DB loomworks ---

    def drill_server(self, vols: Mapping[str, str], net: str) -> Container:
        """A server on ``vols``, reachable as ``postgres`` on ``net``, with an empty ``drill`` table."""
        server = self.run(vols, network=net, aliases=["postgres"])
        pg_ready(server)
        psql(server, "CREATE TABLE drill(tag text PRIMARY KEY)", db="loomworks")
        return server

    def take_backup(self, vols: Mapping[str, str], net: str) -> str:
        """`docker compose run --rm postgres backup`; the backup's name. Two backups in one
        second would share a name: the second is retried."""

        def attempt() -> str | None:
            rc, out = self.one_shot({"backups": vols["backups"]}, ["backup"], network=net)
            if rc == 1 and "already exists" in out:
                return None
            assert rc == 0 and "backup complete and verified" in out, out
            return re.search(r"^/backups/(\d{8}T\d{6}Z)$", out, re.M).group(1)

        return wait_for(attempt, 30, "a base backup with a new name", interval=0.2)

    def ls(self, vols: Mapping[str, str], path: str = PG_MOUNTS["data"]) -> list[str]:
        """The names in ``path`` of the volumes (a one-shot container)."""
        rc, out = self.one_shot(vols, ["bash", "-c", f"ls -A {path}"])
        assert rc == 0, out
        return out.split()


def server_now(c: Container) -> str:
    """The server's clock (UTC), as `restore --target-time` takes it."""
    return psql(c, "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', "
                   "'YYYY-MM-DD HH24:MI:SS.US') || '+00'")


def wait_clock_past(c: Container, instant: str) -> None:
    """Poll until the server's clock is strictly past ``instant`` (commit times must differ)."""
    past = f"SELECT clock_timestamp() > '{instant}'::timestamptz + interval '10 ms'"
    wait_for(lambda: psql(c, past) == "t", 10, "the server clock to move past the noted time", interval=0.02)


def switch_and_wait(c: Container) -> str:
    """Switch to a new WAL segment and wait until the finished one is archived; its name."""
    name = psql(c, "SELECT pg_walfile_name(pg_switch_wal())")
    wait_for(lambda: exec_sh(c, ["test", "-f", f"/wal_archive/{name}.gz"])[0] == 0, 60, f"{name}.gz")
    return name


def drill_tags(c: Container) -> list[str]:
    return psql(c, "SELECT string_agg(tag, ',' ORDER BY tag) FROM drill", db="loomworks").split(",")


def runbook_command(section: str) -> list[str]:
    """The `docker compose run --rm postgres ...` step of the postgres/README.md runbook section
    titled ``section``, as written, as the command of a one-shot container (Postgres.one_shot)."""
    text = (REPO / "postgres" / "README.md").read_text()
    block = text.split(f"### {section}", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    prefix = "docker compose run --rm postgres "
    line = next(ln for ln in block.splitlines() if ln.startswith(prefix))
    return shlex.split(line.removeprefix(prefix))


@dataclass
class Pg:
    """The lab's database server: its name on the network and the application role."""

    container: Container
    user: str = PG_APP_USER
    password: str = PG_APP_PASSWORD

    @property
    def name(self) -> str:
        return self.container.name

    def start(self, timeout: float = 90) -> None:
        self.container.start()
        pg_ready(self.container, timeout)

    def stop(self) -> None:
        self.container.stop(timeout=10)

    def psql(self, sql: str, db: str = "postgres") -> str:
        return psql(self.container, sql, db)


@dataclass
class ErpLab(Postgres):
    """A private network with one loomworks/postgres server (``pg``) and ERP containers
    (``erp_image``) that reach it by name with the application role."""

    erp_image: str = ""
    net: str = ""
    pg: Pg | None = None

    def start(self, timeout: float = 90) -> ErpLab:
        self.net = self.network()
        pw = secrets.token_urlsafe(12)
        self.pg = Pg(self.run(network=self.net, env=pg_env(password=pw), publish=False), password=pw)
        pg_ready(self.pg.container, timeout)
        return self

    def db_env(self) -> dict[str, str]:
        assert self.pg, "ErpLab.start() first"
        return {"DB_HOST": self.pg.name, "DB_USER": self.pg.user, "DB_PASSWORD": self.pg.password}

    def erp(self, env: Mapping[str, str] | None = None, *, db: bool = True, image: str | None = None,
            addon: Path | None = None, healthcheck: dict | None = FAST_HEALTH, command=None,
            start: bool = True, **kw) -> Container:
        """An ERP container on the lab's network, 8069 published on loopback; ``db``: with
        DB_HOST/DB_USER/DB_PASSWORD of the lab's server; ``addon`` mounted read-only."""
        environment = {**(self.db_env() if db else {}), **(env or {})}
        volumes = dict(kw.pop("volumes", {}))
        if addon is not None:
            volumes[str(addon)] = {"bind": f"{ADDONS_MOUNT}/{addon.name}", "mode": "ro"}
        return self.container(image or self.erp_image, command, role="erp", start=start, network=self.net,
                              environment=environment, volumes=volumes, healthcheck=healthcheck,
                              ports={"8069/tcp": ("127.0.0.1", None)}, **kw)

    def url(self, c: Container, path: str = "") -> str:
        return f"http://127.0.0.1:{host_port(c, 8069)}{path}"
