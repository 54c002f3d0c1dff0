"""Drive the project's Compose stack from tests and benchmarks.

Each ``Stack`` is its own Compose project (``<prefix>-<random>``, default ``lwtest``) with
free loopback ports, ``--env-file /dev/null`` (a developer's ``.env`` never leaks in) and the
images the test session built (``LOOMWORKS_TAG``, default the session's tag).
``destroy()`` removes containers, networks and volumes.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import requests

from tests.support.containers import psql_cmd
from tests.support.images import TAG
from tests.support.net import free_port
from tests.support.rpc import login
from tests.support.wait import wait_for

REPO = Path(__file__).resolve().parents[2]
SERVICES = ("postgres", "backup", "filestore", "walstream", "redis", "odoo", "nginx")
DEV_SECRETS = REPO / "secrets.dev"
# Override that mounts the test addon lwtest_slow (GET /lwtest/sleep, GET /lwtest/bus/send).
TEST_ADDON = "tests/docker/addons/compose.lwtest_slow.yml"


def dev_secret(name: str) -> str:
    return (DEV_SECRETS / f"{name}.txt").read_text().strip()


def docker(*args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
    """The docker CLI; with ``check`` a failure is an AssertionError with its output."""
    r = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=False)
    assert r.returncode == 0 or not check, \
        f"docker {' '.join(args)}: {r.returncode}\n{r.stdout[-2000:]}{r.stderr[-2000:]}"
    return r


@dataclass
class Stack:
    files: tuple[str, ...] = ("docker-compose.yml",)
    tag: str = TAG
    extra_env: dict[str, str] = field(default_factory=dict)
    prefix: str = "lwtest"
    project: str = ""
    ports: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.project = self.project or f"{self.prefix}-{uuid.uuid4().hex[:8]}"
        self.ports = {
            "HTTP_LOCAL_PORT": free_port(), "HTTP_PORT": free_port(), "HTTPS_PORT": free_port(),
            "DEBUGPY_HOST_PORT": free_port(), "MAIL_WEB_HOST_PORT": free_port(),
        }

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("COMPOSE_", "DOCKER_HOST"))}
        # buildx here is older than compose's bake needs; the classic path works.
        env["COMPOSE_BAKE"] = "false"
        env["LOOMWORKS_TAG"] = self.tag
        env.update({k: str(v) for k, v in self.ports.items()})
        env.update(self.extra_env)
        return env

    def cmd(self, *args: str) -> list[str]:
        files = [a for f in self.files for a in ("-f", str(REPO / f))]
        return ["docker", "compose", "-p", self.project, "--env-file", os.devnull, *files, *args]

    def run(self, *args: str, check: bool = True, timeout: float = 900,
            input: str | None = None) -> subprocess.CompletedProcess:
        r = subprocess.run(self.cmd(*args), env=self.env, cwd=REPO, capture_output=True, text=True,
                           timeout=timeout, check=False, input=input)
        if check and r.returncode != 0:
            raise RuntimeError(f"docker compose {' '.join(args)} failed ({r.returncode}):\n"
                               f"{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
        return r

    def config(self) -> dict:
        return json.loads(self.run("config", "--format", "json").stdout)

    def up(self, *args: str) -> None:
        self.run("up", "-d", "--no-build", *args)

    def start(self, timeout: float = 900) -> Stack:
        """``up``, then wait until every service is healthy (and say how long it took); a stack
        that does not get there is destroyed and the error raised."""
        start = time.monotonic()
        try:
            self.up()
            self.wait_healthy(timeout)
        except BaseException:
            self.destroy()
            raise
        print(f"\n{self.project}: all healthy {time.monotonic() - start:.1f}s after `up`")
        return self

    def down(self, *args: str) -> None:
        self.run("down", "--timeout", "60", *args, timeout=300)

    def destroy(self) -> None:
        self.run("down", "-v", "--remove-orphans", "--timeout", "30", check=False, timeout=300)

    def containers(self) -> list[str]:
        """Every container of the project, created or running (the engine's project label)."""
        label = f"label=com.docker.compose.project={self.project}"
        return docker("ps", "-a", "-q", "--filter", label).stdout.split()

    def container_id(self, service: str) -> str:
        out = self.run("ps", "-a", "-q", service).stdout.split()
        assert out, f"no container for {service}"
        return out[0]

    def inspect(self, service: str) -> dict:
        return json.loads(docker("inspect", self.container_id(service)).stdout)[0]

    def health(self, service: str) -> str:
        state = self.inspect(service)["State"]
        if state["Status"] in ("exited", "dead"):
            return "exited"
        return state.get("Health", {}).get("Status", "none")

    def wait_healthy(self, timeout: float = 600) -> float:
        """Seconds until every service is healthy; a service that exits fails at once."""
        start = time.monotonic()

        def all_healthy() -> bool:
            states = {}
            for s in SERVICES:
                try:
                    states[s] = self.health(s)
                except AssertionError:
                    states[s] = "missing"
            bad = [s for s, h in states.items() if h in ("exited", "unhealthy")]
            if bad:
                raise AssertionError(f"{bad} {[states[b] for b in bad]}:\n{self.logs(*bad)}")
            return all(h == "healthy" for h in states.values())

        wait_for(all_healthy, timeout, f"{self.project}: all services healthy", interval=1)
        return time.monotonic() - start

    def wait_service_healthy(self, service: str, timeout: float = 120) -> None:
        def healthy() -> bool:
            h = self.health(service)
            if h in ("exited", "unhealthy"):
                raise AssertionError(f"{service} {h}:\n{self.logs(service)}")
            return h == "healthy"

        wait_for(healthy, timeout, f"{self.project}: {service} healthy", interval=0.5)

    def logs(self, *services: str, tail: int = 60) -> str:
        return self.run("logs", "--no-color", "--tail", str(tail), *services, check=False).stdout

    def exec(self, service: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return self.run("exec", "-T", service, *args, check=check, timeout=120)

    def odoo_shell(self, script: str, db: str = "loomworks", timeout: float = 300) -> str:
        """``script`` (Python, on stdin) in ``odoo shell -d db`` inside the odoo service: a new
        Odoo process with the service's config (its server-wide modules loaded); its output.
        The operator's command as is: in the dev image the server's debugger holds DEBUGPY_PORT
        and this process runs without one (docker/bin/odoo)."""
        r = self.run("exec", "-T", "odoo", "odoo", "shell", "-d", db,
                     "--no-http", "--log-level=warn", input=script, timeout=timeout)
        return r.stdout + r.stderr

    def url(self, path: str = "") -> str:
        """``path`` on nginx's plain local listener (what http://localhost:8069 is)."""
        return f"http://127.0.0.1:{self.ports['HTTP_LOCAL_PORT']}{path}"

    def login(self, db: str = "loomworks") -> requests.Session:
        """A JSON-RPC session of the admin user (the dev secret), through nginx."""
        return login(self.url(), db, dev_secret("admin_password"))

    def psql(self, sql: str, db: str = "postgres") -> str:
        """SQL as the superuser inside the postgres service; the output."""
        return self.exec("postgres", *psql_cmd(sql, db)).stdout.strip()

    def archived(self, segment: str) -> bool:
        return self.exec("postgres", "test", "-s", f"/wal_archive/{segment}.gz", check=False).returncode == 0

    def archive_wal(self, timeout: float = 120) -> str:
        """Switch WAL and wait until the closed segment is in /wal_archive; its name."""
        segment = self.psql("SELECT pg_walfile_name(pg_switch_wal())")
        assert segment
        wait_for(lambda: self.archived(segment), timeout, f"{segment}.gz in /wal_archive", interval=0.5)
        return segment


class EventRecorder:
    """Records the engine's container events (start, health_status) of one project."""

    def __init__(self, client, project: str) -> None:
        self.events: list[dict] = []
        self._stream = client.events(
            decode=True, filters={"type": "container", "label": f"com.docker.compose.project={project}"})
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        try:
            for ev in self._stream:
                self.events.append(ev)
        except Exception:  # noqa: S110 - the stream is closed on purpose in stop()
            pass

    def stop(self) -> None:
        self._stream.close()

    def times(self, service: str, status: str, since_ns: int = 0) -> list[int]:
        """timeNano of the service's events whose status is ``status`` (e.g. 'start')."""
        return [
            ev["timeNano"] for ev in list(self.events)
            if ev.get("Actor", {}).get("Attributes", {}).get("com.docker.compose.service") == service
            and ev.get("status") == status and ev["timeNano"] >= since_ns
        ]
