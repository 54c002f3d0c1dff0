"""Real odoo-bin processes on loopback against throwaway PostgreSQL clusters.

Used by the tests in this folder and by ``bench/health_bench.py``. Odoo refuses
the ``postgres`` superuser, so a normal role (LOGIN CREATEDB, like the image's
APP_DB_USER) is created in the cluster and written into a private config file.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import requests

from tests.support.net import free_port
from tests.support.pg import PG_BIN, PgCluster
from tests.support.wait import wait_for

REPO = Path(__file__).resolve().parents[2]
ADDONS = REPO / "addons"
ODOO_ROLE = "odoo"
ODOO_PASSWORD = "odoo-test-password"  # noqa: S105 - throwaway cluster on loopback
DB_NAME = "lwtest_health"
SERVER_WIDE_HEALTH = "base,web,loomworks_health"
SERVER_WIDE_PLAIN = "base,web"


def create_role(cluster: PgCluster) -> None:
    cluster.psql(
        "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'odoo') THEN "
        f"CREATE ROLE {ODOO_ROLE} LOGIN CREATEDB PASSWORD '{ODOO_PASSWORD}'; END IF; END $$"
    )


def role_env(cluster: PgCluster) -> dict[str, str]:
    return {**cluster.env, "PGUSER": ODOO_ROLE, "PGPASSWORD": ODOO_PASSWORD}


def write_config(path: Path, cluster: PgCluster, tree: Path, data_dir: Path, **options: object) -> Path:
    """An Odoo config file (0600) for ``cluster``; ``options`` are added/overridden as given."""
    values: dict[str, object] = {
        "db_host": "127.0.0.1",
        "db_port": cluster.port,
        "db_user": ODOO_ROLE,
        "db_password": ODOO_PASSWORD,
        "addons_path": f"{tree / 'addons'},{ADDONS}",
        "data_dir": data_dir,
        "http_interface": "127.0.0.1",
        "http_port": free_port(),
        "gevent_port": free_port(),
        "max_cron_threads": 0,
        "without_demo": "all",
        "log_level": "info",
        **options,
    }
    path.write_text("[options]\n" + "".join(f"{k} = {v}\n" for k, v in values.items() if v is not None))
    path.chmod(0o600)
    return path


def odoo_bin(tree: Path) -> list[str]:
    return [sys.executable, str(tree / "odoo-bin")]


def init_database(tree: Path, conf: Path, db: str, modules: str, log: Path, timeout: float = 900) -> None:
    """Create ``db`` and install ``modules`` (``--stop-after-init``); the log tail on failure."""
    with log.open("ab") as out:
        r = subprocess.run(
            [*odoo_bin(tree), "-c", str(conf), "-d", db, "-i", modules, "--stop-after-init",
             "--no-http", "--logfile", str(log)],
            stdout=out, stderr=subprocess.STDOUT, timeout=timeout, check=False,
        )
    if r.returncode != 0:
        raise RuntimeError(f"odoo-bin -i {modules} on {db} failed (rc={r.returncode}):\n{tail(log)}")


def dump_database(cluster: PgCluster, db: str, dest: Path) -> Path:
    subprocess.run([str(PG_BIN / "pg_dump"), "-Fc", "-f", str(dest), db], env=role_env(cluster),
                   check=True, capture_output=True, text=True)
    return dest


def restore_database(cluster: PgCluster, db: str, dump: Path) -> None:
    """Create the role and ``db`` (owned by it) in ``cluster`` and restore ``dump`` into it."""
    create_role(cluster)
    cluster.psql(f'CREATE DATABASE "{db}" OWNER {ODOO_ROLE}')
    subprocess.run([str(PG_BIN / "pg_restore"), "-O", "-x", "-d", db, str(dump)], env=role_env(cluster),
                   check=True, capture_output=True, text=True)


def tail(path: Path, lines: int = 60) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return f"(no log at {path})"


@dataclass
class OdooProcess:
    """One odoo-bin server. ``args`` follow ``-c <conf>``; output goes to ``log``."""

    tree: Path
    conf: Path
    args: list[str] = field(default_factory=list)
    log: Path = field(default_factory=lambda: Path(tempfile.mkstemp(prefix="lwtest-odoo-", suffix=".log")[1]))
    proc: subprocess.Popen | None = None

    @property
    def port(self) -> int:
        for line in self.conf.read_text().splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "http_port":
                return int(value)
        raise ValueError(f"{self.conf}: no http_port")

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> OdooProcess:
        out = self.log.open("ab")
        self.proc = subprocess.Popen(
            [*odoo_bin(self.tree), "-c", str(self.conf), *self.args],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
        out.close()
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_http(self, path: str = "/web/health/live", status: int = 200, timeout: float = 180) -> None:
        """Poll ``path`` until it answers ``status`` (the process must stay alive)."""

        def answered() -> bool:
            if not self.running():
                raise RuntimeError(f"odoo-bin exited with {self.proc.returncode}:\n{tail(self.log)}")
            try:
                return requests.get(self.url(path), timeout=5).status_code == status
            except requests.RequestException:
                return False

        try:
            wait_for(answered, timeout, f"{self.url(path)} -> {status}", interval=0.2)
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}\n{tail(self.log)}") from None

    def stop(self, timeout: float = 30) -> None:
        if not self.running():
            return
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGINT)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def cpu_seconds(self) -> float:
        """user+system CPU of the process (all threads) so far."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks


def count_backends(cluster: PgCluster, db: str | None = None) -> int:
    """Client backends connected to the cluster (or to ``db``), not counting this query's own."""
    where = f" AND datname = '{db}'" if db else ""  # db: a fixed test database name
    return int(cluster.psql(
        "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'"  # noqa: S608
        f" AND pid <> pg_backend_pid(){where}"
    ))
