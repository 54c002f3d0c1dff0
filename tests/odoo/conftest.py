"""Fixtures for the Odoo tests: a database with loomworks_health installed, Odoo processes."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.odoo.odoo_proc import (
    DB_NAME,
    OdooProcess,
    create_role,
    dump_database,
    init_database,
    restore_database,
    write_config,
)
from tests.support.pg import PgCluster


@dataclass
class HealthDb:
    cluster: PgCluster
    name: str
    conf: Path
    data_dir: Path
    dump: Path
    log: Path


@pytest.fixture(scope="session")
def health_db(odoo_tree: Path, pg_cluster: PgCluster, tmp_path_factory: pytest.TempPathFactory) -> HealthDb:
    """``lwtest_health`` in the session cluster with loomworks_health installed (no demo data)."""
    work = tmp_path_factory.mktemp("odoo")
    data_dir = work / "data"
    data_dir.mkdir()
    create_role(pg_cluster)
    conf = write_config(work / "odoo.conf", pg_cluster, odoo_tree, data_dir,
                        db_name=DB_NAME, log_level="warn")
    log = work / "init.log"
    init_database(odoo_tree, conf, DB_NAME, "loomworks_health", log)
    dump = dump_database(pg_cluster, DB_NAME, work / f"{DB_NAME}.dump")
    return HealthDb(pg_cluster, DB_NAME, conf, data_dir, dump, log)


@pytest.fixture
def private_health_db(make_pg_cluster, health_db: HealthDb) -> PgCluster:
    """A private cluster (the test may stop it) holding a copy of the health database."""
    cluster = make_pg_cluster().start()
    restore_database(cluster, health_db.name, health_db.dump)
    return cluster


@pytest.fixture
def odoo_server(odoo_tree: Path, health_db: HealthDb, tmp_path: Path) -> Iterator:
    """Factory: ``odoo_server(cluster, *args, **conf_options)`` starts odoo-bin; stopped at teardown."""
    servers: list[OdooProcess] = []

    def start(cluster: PgCluster, *args: str, **options: object) -> OdooProcess:
        n = len(servers)
        conf = write_config(tmp_path / f"odoo-{n}.conf", cluster, odoo_tree, health_db.data_dir, **options)
        server = OdooProcess(odoo_tree, conf, list(args), log=tmp_path / f"odoo-{n}.log").start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
