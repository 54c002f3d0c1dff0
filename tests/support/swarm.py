"""Drive the project's Swarm stack (swarm/docker-stack.yml through swarm/stack) from tests.

Each ``SwarmStack`` is its own stack (``lwtest-swarm-<random>``) on free host ports, with the
images the test session built. ``up()`` initialises a single-node swarm when the engine is in
none (swarm/stack does, and marks it); ``destroy()`` removes the stack with its volumes and
leaves the swarm again when ``up`` created it and nothing else runs in it, so the engine is
left as it was found. Replicas are not published: a request to one replica runs inside its
container (curl to 127.0.0.1), which is how tests pick the replica.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.compose import docker
from tests.support.images import TAG
from tests.support.net import free_port
from tests.support.wait import wait_for

REPO = Path(__file__).resolve().parents[2]
STACK_SCRIPT = REPO / "swarm" / "stack"


@dataclass
class SwarmStack:
    tag: str = TAG
    replicas: int = 3
    cron_replicas: int = 1
    erp_image: str = ""
    extra_env: dict[str, str] = field(default_factory=dict)
    name: str = ""
    ports: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.name = self.name or f"lwtest-swarm-{uuid.uuid4().hex[:8]}"
        self.ports = {"HTTP_LOCAL_PORT": free_port(), "HTTP_PORT": free_port(), "HTTPS_PORT": free_port()}

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_HOST")}
        env.update(STACK_NAME=self.name, LOOMWORKS_TAG=self.tag, ODOO_REPLICAS=str(self.replicas),
                   ODOO_CRON_REPLICAS=str(self.cron_replicas), LOOMWORKS_LIB=str(REPO / "docker" / "lib"))
        if self.erp_image:
            env["ERP_IMAGE"] = self.erp_image
        env.update({k: str(v) for k, v in self.ports.items()})
        env.update(self.extra_env)
        return env

    def script(self, *args: str, check: bool = True, timeout: float = 1200) -> subprocess.CompletedProcess:
        r = subprocess.run([str(STACK_SCRIPT), *args], env=self.env, cwd=REPO, capture_output=True, text=True,
                           timeout=timeout, check=False)
        if check and r.returncode != 0:
            raise RuntimeError(f"swarm/stack {' '.join(args)} failed ({r.returncode}):\n{r.stderr[-5000:]}")
        return r

    def up(self) -> SwarmStack:
        try:
            self.script("up")
            for name in ("postgres", "redis", "odoo", "odoo-cron", "nginx"):
                self.wait_converged(name)
        except BaseException:
            self.destroy()
            raise
        return self

    def destroy(self, leave: bool = True) -> subprocess.CompletedProcess:
        """Stack, its jobs' containers, volumes and secrets removed (`PURGE=1 swarm/stack down`);
        the swarm left when `up` created it (unless ``leave`` is false: the session leaves it
        once, see ``leave_created_swarm``). The script's run is returned, not checked."""
        env = {**self.env, "PURGE": "1", "LEAVE_SWARM": "1" if leave else "0"}
        return subprocess.run([str(STACK_SCRIPT), "down"], env=env, capture_output=True, text=True,
                              timeout=600, check=False)

    def job_containers(self) -> list[str]:
        """Names of the containers (any state) of the stack's one-off jobs (the migration jobs
        of `swarm/stack up`, `upgrade` and `migrate`: services ``<stack>_migrate-<time>``)."""
        out = docker("ps", "-a", "--filter", f"name={self.name}_migrate-", "--format",
                     '{{.Names}} {{.Label "com.docker.swarm.service.name"}}').stdout
        return [name for name, _, service in (line.partition(" ") for line in out.splitlines())
                if service.startswith(f"{self.name}_migrate-")]

    def leftovers(self) -> dict[str, list[str]]:
        """What of the stack is still on this engine: containers of its services and jobs (any
        state: task containers are named ``<stack>_<service>.<slot>.<task>``) and volumes."""
        return {"containers": docker("ps", "-a", "--filter", f"name={self.name}_", "--format",
                                     "{{.Names}}").stdout.split(),
                "volumes": docker("volume", "ls", "-q", "--filter", f"name={self.name}_").stdout.split()}

    def url(self, path: str = "") -> str:
        return f"http://127.0.0.1:{self.ports['HTTP_LOCAL_PORT']}{path}"

    def service(self, name: str) -> str:
        return f"{self.name}_{name}"

    def inspect_service(self, name: str) -> dict:
        return json.loads(docker("service", "inspect", self.service(name)).stdout)[0]

    def replicas_running(self, name: str) -> tuple[int, int]:
        """(running, desired) as `docker service ls` counts them (running = healthy)."""
        out = docker("service", "ls", "--filter", f"name={self.service(name)}", "--format", "{{.Replicas}}")
        running, desired = out.stdout.split()[0].split("/")
        return int(running), int(desired)

    def containers(self, name: str) -> list[str]:
        """Running containers of the service's tasks (on this node)."""
        out = docker("ps", "-q", "--filter", f"label=com.docker.swarm.service.name={self.service(name)}",
                     "--filter", "status=running")
        return out.stdout.split()

    def healthy_containers(self, name: str) -> list[str]:
        return [c for c in self.containers(name)
                if docker("inspect", "-f", "{{.State.Health.Status}}", c).stdout.strip() == "healthy"]

    def wait_converged(self, name: str, timeout: float = 600) -> None:
        """Every replica of the service running (healthy) and no update under way."""

        def done() -> bool:
            running, desired = self.replicas_running(name)
            state = docker("service", "inspect", self.service(name), "--format",
                           "{{if .UpdateStatus}}{{.UpdateStatus.State}}{{end}}").stdout.strip()
            return running == desired and state not in ("updating", "rollback_started", "paused")

        wait_for(done, timeout, f"{self.service(name)} converged", interval=1)

    def replica_http(self, container: str, path: str, *, cookie: str | None = None, body: dict | None = None,
                     host: str = "localhost") -> tuple[int, str]:
        """A request to one replica, from inside its container: (status, body)."""
        cmd = ["curl", "-s", "-o", "/dev/stdout", "-w", "\n%{http_code}", "-H", f"Host: {host}"]
        if cookie:
            cmd += ["-H", f"Cookie: session_id={cookie}"]
        if body is not None:
            cmd += ["-H", "Content-Type: application/json", "--data-binary", json.dumps(body)]
        r = docker("exec", container, *cmd, f"http://127.0.0.1:8069{path}")
        text, _, status = r.stdout.rpartition("\n")
        return int(status), text

    def replica_rpc(self, container: str, cookie: str, model: str, method: str, *args: object,
                    **kwargs: object) -> object:
        """call_kw on one replica with the session ``cookie``; the result, or AssertionError."""
        body = {"jsonrpc": "2.0", "method": "call", "id": 1,
                "params": {"model": model, "method": method, "args": list(args), "kwargs": kwargs}}
        status, text = self.replica_http(container, f"/web/dataset/call_kw/{model}/{method}", cookie=cookie,
                                         body=body)
        assert status == 200, (status, text[:2000])
        answer = json.loads(text)
        assert "error" not in answer, answer["error"]
        return answer["result"]

    def logs(self, name: str, tail: int = 200) -> str:
        r = docker("service", "logs", "--raw", "--tail", str(tail), self.service(name), check=False)
        return r.stdout + r.stderr


def swarm_state() -> str:
    """The engine's swarm state: ``inactive`` (in no swarm), ``active``, ..."""
    return docker("info", "--format", "{{.Swarm.LocalNodeState}}").stdout.strip()


def created_swarm_idle() -> bool:
    """The engine is in a swarm that swarm/stack created (node label loomworks.swarm-created)
    and no service runs in it: the state `swarm/stack down` leaves."""
    if swarm_state() != "active":
        return False
    label = docker("node", "inspect", "self", "--format", '{{index .Spec.Labels "loomworks.swarm-created"}}')
    return label.stdout.strip() == "1" and not docker("service", "ls", "-q").stdout.split()


def leave_created_swarm() -> None:
    """Leave the swarm when swarm/stack created it and nothing runs in it any more (leaving and
    initialising a swarm between test modules left stale network state in the engine); an
    AssertionError when `swarm/stack down` fails or does not leave such a swarm."""
    leave = created_swarm_idle()
    down = SwarmStack(name="lwtest-swarm-none").destroy()
    assert down.returncode == 0, f"swarm/stack down failed:\n{down.stderr[-3000:]}"
    assert not leave or swarm_state() == "inactive", \
        f"the swarm swarm/stack created is not left:\n{down.stderr[-3000:]}"
