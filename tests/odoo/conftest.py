"""Fixtures for the Odoo tests: a database with loomworks_health installed, Odoo processes."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.odoo import DB_NAME, Odoo, dump_database, restore_database
from tests.support.pg import PgCluster


@dataclass
class HealthDb:
    cluster: PgCluster
    name: str
    conf: Path
    data_dir: Path
    dump: Path


@pytest.fixture(scope="session")
def health_db(odoo_tree: Path, pg_cluster: PgCluster, tmp_path_factory: pytest.TempPathFactory) -> HealthDb:
    """``lwtest_health`` in the session cluster with loomworks_health installed (no demo data)."""
    work = tmp_path_factory.mktemp("odoo")
    odoo = Odoo(odoo_tree, pg_cluster, {"db_name": DB_NAME, "log_level": "warn"}, root=work)
    odoo.init_db(DB_NAME, "loomworks_health")
    dump = dump_database(pg_cluster, DB_NAME, work / f"{DB_NAME}.dump")
    return HealthDb(pg_cluster, DB_NAME, odoo.conf, Path(odoo.data_dir), dump)


@pytest.fixture
def private_health_db(make_pg_cluster, health_db: HealthDb) -> PgCluster:
    """A private cluster (the test may stop it) holding a copy of the health database."""
    cluster = make_pg_cluster().start()
    restore_database(cluster, health_db.name, health_db.dump)
    return cluster


@pytest.fixture
def odoo_server(odoo_tree: Path, health_db: HealthDb) -> Iterator:
    """Factory: ``odoo_server(cluster, *args, **conf_options)`` starts odoo-bin; stopped at teardown."""
    servers: list[Odoo] = []

    def start(cluster: PgCluster, *args: str, **options: object) -> Odoo:
        server = Odoo(odoo_tree, cluster, data_dir=health_db.data_dir).start(*args, **options)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.destroy()
