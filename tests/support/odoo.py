"""Real odoo-bin servers on loopback against throwaway PostgreSQL clusters (tests/support/pg.py).

Odoo refuses the ``postgres`` superuser, so a normal role (LOGIN CREATEDB, like the image's
application role) is created in the cluster. Each ``Odoo`` has its own directory (config
file, log) and free HTTP/gevent ports; the data directory may be shared. Databases are
initialised once (``init_db``), cloned with ``CREATE DATABASE ... TEMPLATE`` plus a
filestore copy (``clone_db``), or moved between clusters with pg_dump/pg_restore.
"""

from __future__ import annotations

import os
import shutil
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
        f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{ODOO_ROLE}') THEN "
        f"CREATE ROLE {ODOO_ROLE} LOGIN CREATEDB PASSWORD '{ODOO_PASSWORD}'; END IF; END $$"
    )


def role_env(cluster: PgCluster) -> dict[str, str]:
    return {**cluster.env, "PGUSER": ODOO_ROLE, "PGPASSWORD": ODOO_PASSWORD}


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


def count_backends(cluster: PgCluster, db: str | None = None) -> int:
    """Client backends connected to the cluster (or to ``db``), not counting this query's own."""
    where = f" AND datname = '{db}'" if db else ""  # db: a fixed test database name
    return int(cluster.psql(
        "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'"  # noqa: S608
        f" AND pid <> pg_backend_pid(){where}"
    ))


def tail(path: Path, lines: int = 60) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return f"(no log at {path})"


@dataclass
class Odoo:
    """One odoo-bin (Odoo's addons and this repository's) for ``cluster``, as the Odoo role.
    ``options`` are config file options; ``start()`` may add more, and command-line args."""

    tree: Path
    cluster: PgCluster
    options: dict[str, object] = field(default_factory=dict)
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="lwtest-odoo-")))
    data_dir: Path | None = None
    proc: subprocess.Popen | None = None

    def __post_init__(self) -> None:
        self.data_dir = self.data_dir or self.root / "data"
        self.port, self.gevent_port = free_port(), free_port()
        create_role(self.cluster)

    @property
    def conf(self) -> Path:
        return self.root / "odoo.conf"

    @property
    def log_path(self) -> Path:
        return self.root / "odoo.log"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def write_config(self, **options: object) -> Path:
        """The config file (0600): the cluster, loopback ports, then ``options`` as given."""
        values: dict[str, object] = {
            "db_host": "127.0.0.1", "db_port": self.cluster.port, "db_user": ODOO_ROLE,
            "db_password": ODOO_PASSWORD, "addons_path": f"{self.tree / 'addons'},{ADDONS}",
            "data_dir": self.data_dir, "http_interface": "127.0.0.1", "http_port": self.port,
            "gevent_port": self.gevent_port, "max_cron_threads": 0, "without_demo": "all",
            "log_level": "info", **self.options, **options,
        }
        lines = "".join(f"{k} = {v}\n" for k, v in values.items() if v is not None)
        self.conf.write_text(f"[options]\n{lines}")
        self.conf.chmod(0o600)
        return self.conf

    def cmd(self, *args: str) -> list[str]:
        return [sys.executable, str(self.tree / "odoo-bin"), "-c", str(self.conf), *args]

    def init_db(self, db: str, modules: str = "base", timeout: float = 900) -> None:
        """Create ``db`` and install ``modules`` (``--stop-after-init``); the log tail on failure."""
        self.write_config()
        with self.log_path.open("ab") as out:
            r = subprocess.run(self.cmd("-d", db, "-i", modules, "--stop-after-init", "--no-http"),
                               stdout=out, stderr=subprocess.STDOUT, timeout=timeout, check=False)
        if r.returncode != 0:
            raise RuntimeError(f"odoo-bin -i {modules} on {db} failed (rc={r.returncode}):\n"
                               f"{tail(self.log_path)}")

    def clone_db(self, db: str, template: str) -> None:
        """``db`` as a copy of ``template``, its filestore too."""
        self.cluster.psql(f'CREATE DATABASE "{db}" OWNER {ODOO_ROLE} TEMPLATE "{template}"')
        src = Path(self.data_dir) / "filestore" / template
        if src.exists():
            shutil.copytree(src, Path(self.data_dir) / "filestore" / db)

    def start(self, *args: str, **options: object) -> Odoo:
        """Run the server in its own process group (config ``options``, command-line ``args``)."""
        self.write_config(**options)
        with self.log_path.open("ab") as out:
            self.proc = subprocess.Popen(self.cmd(*args), stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_http(self, path: str = "/web/health", status: int = 200, timeout: float = 180) -> Odoo:
        """Poll ``path`` until it answers ``status`` (the process must stay alive)."""

        def answered() -> bool:
            if not self.running():
                raise RuntimeError(f"odoo-bin exited with {self.proc and self.proc.returncode}:\n"
                                   f"{tail(self.log_path)}")
            try:
                return requests.get(self.url(path), timeout=5).status_code == status
            except requests.RequestException:
                return False

        try:
            wait_for(answered, timeout, f"{self.url(path)} -> {status}", interval=0.2)
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}\n{tail(self.log_path)}") from None
        return self

    def stop(self, timeout: float = 30) -> None:
        if not self.running():
            return
        os.killpg(self.pid, signal.SIGINT)
        try:
            self.proc.wait(timeout)  # type: ignore[union-attr]
        except subprocess.TimeoutExpired:
            os.killpg(self.pid, signal.SIGKILL)
            self.proc.wait(10)  # type: ignore[union-attr]

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def cpu_seconds(self) -> float:
        """user+system CPU of the process (all threads) so far."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
