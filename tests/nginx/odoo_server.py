"""A real Odoo 18 server on loopback for the nginx tests and bench/proxy_bench.py.

Databases are initialised once with ``-i base --without-demo=all`` (about 20 s);
more tenants are cloned with ``CREATEDB ... TEMPLATE`` plus a filestore copy.
The server runs threaded (``--workers 0``), where Odoo serves /websocket on its
HTTP port, so tests point ODOO_WS_PORT at that same port.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.net import free_port
from tests.support.pg import PgCluster
from tests.support.wait import wait_for

DB_USER = "odoo"
DB_PASSWORD = "odoo-test-password"  # noqa: S105 - throwaway test cluster


@dataclass
class OdooServer:
    tree: Path
    cluster: PgCluster
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="lwtest-odoo-")))
    port: int = 0
    proc: subprocess.Popen | None = None

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log_path(self) -> Path:
        return self.root / "odoo.log"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def _conf(self, extra: dict[str, str]) -> Path:
        options = {
            "db_host": "127.0.0.1", "db_port": str(self.cluster.port), "db_user": DB_USER,
            "db_password": DB_PASSWORD, "data_dir": str(self.data_dir), "http_interface": "127.0.0.1",
            "list_db": "True", "max_cron_threads": "0", "without_demo": "all", **extra,
        }
        conf = self.root / "odoo.conf"
        conf.write_text("[options]\n" + "".join(f"{k} = {v}\n" for k, v in options.items()))
        return conf

    def _cmd(self, *args: str, **conf: str) -> list[str]:
        return [sys.executable, str(self.tree / "odoo-bin"), "-c", str(self._conf(conf)), *args]

    def prepare_role(self) -> None:
        self.cluster.psql(
            f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{DB_USER}') THEN "
            f"CREATE ROLE {DB_USER} LOGIN CREATEDB PASSWORD '{DB_PASSWORD}'; END IF; END $$;"
        )

    def create_db(self, name: str, template: str | None = None) -> None:
        """Initialise ``name`` (or clone ``template`` with its filestore)."""
        if template:
            self.cluster.psql(f'CREATE DATABASE "{name}" OWNER {DB_USER} TEMPLATE "{template}"')
            src = self.data_dir / "filestore" / template
            if src.exists():
                shutil.copytree(src, self.data_dir / "filestore" / name)
            return
        r = subprocess.run(self._cmd("-d", name, "-i", "base", "--stop-after-init", "--log-level=warn"),
                           capture_output=True, text=True, timeout=600, check=False)
        if r.returncode != 0:
            raise RuntimeError(f"odoo -i base for {name} failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")

    def start(self, *, db_filter: str = "^%d$", proxy_mode: bool = True, timeout: float = 90) -> OdooServer:
        self.port = free_port()
        conf = {"http_port": str(self.port), "gevent_port": str(free_port()), "workers": "0",
                "dbfilter": db_filter, "proxy_mode": str(proxy_mode), "log_level": "info",
                "logfile": str(self.log_path)}
        self.proc = subprocess.Popen(self._cmd(**conf), stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)

        def up() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"odoo exited with {self.proc.returncode}:\n{self.log()[-3000:]}")
            return "HTTP service (werkzeug) running" in self.log()

        wait_for(up, timeout, "Odoo's HTTP service")
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
