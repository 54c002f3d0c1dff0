"""A required secret file missing or empty: Compose refuses naming it before it starts any
container (it may already have created one: containers are created in parallel), or the
service refuses with one clear line and nothing that depends on it starts (no half-started stack)."""

from __future__ import annotations

import shutil
import stat
from pathlib import Path

import pytest

from tests.support.compose import DEV_SECRETS, Stack, docker
from tests.support.wait import wait_for

pytestmark = [pytest.mark.docker, pytest.mark.odoo]


@pytest.fixture
def secrets_copy(tmp_path: Path) -> Path:
    d = tmp_path / "secrets"
    d.mkdir()
    for f in DEV_SECRETS.glob("*.txt"):
        shutil.copy(f, d / f.name)
        (d / f.name).chmod(0o644)
    for p in (tmp_path, d):
        p.chmod(p.stat().st_mode | stat.S_IXOTH | stat.S_IROTH)
    return d


def never_started(st: Stack, service: str) -> bool:
    ids = st.run("ps", "-a", "-q", service).stdout.split()
    if not ids:
        return True
    state = st.inspect(service)["State"]
    return state["StartedAt"].startswith("0001-") and state["Status"] == "created"


def test_missing_secret_file_refused_before_any_container_starts(stacks, secrets_copy: Path, drill):
    (secrets_copy / "redis_password.txt").unlink()
    st = stacks(env={"SECRETS_DIR": str(secrets_copy)}, start=False)
    r = st.run("up", "-d", "--no-build", check=False, timeout=300)
    assert r.returncode != 0
    assert "redis_password.txt" in r.stderr, r.stderr[-2000:]
    services = st.run("config", "--services").stdout.split()
    assert services and all(never_started(st, s) for s in services), docker("ps", "-a").stdout
    drill("edge: secret file missing", "compose refuses, naming the file; no container ever started")


def test_empty_db_password_stops_postgres_with_one_clear_line(stacks, secrets_copy: Path, drill):
    (secrets_copy / "db_password.txt").write_text("")
    st = stacks(env={"SECRETS_DIR": str(secrets_copy)}, start=False)
    r = st.run("up", "-d", "--no-build", check=False, timeout=600)
    assert r.returncode != 0, r.stdout
    line = "DB_PASSWORD (or DB_PASSWORD_FILE) is required"
    wait_for(lambda: line in st.logs("postgres", tail=50), 120, "postgres' error line", interval=0.5)
    logs = st.logs("postgres", tail=50)
    # the restart policy retries; each attempt is the same one line and no init ran
    errors = [ln for ln in logs.splitlines() if "error" in ln.lower()]
    assert errors and all(line in ln for ln in errors), logs
    assert "created login role" not in logs, logs
    # the restart policy runs it again; between attempts it shows the failed exit code
    wait_for(
        lambda: st.inspect("postgres")["State"]["ExitCode"] != 0, 60, "postgres' non-zero exit", interval=0.2
    )
    assert st.health("postgres") != "healthy"
    assert never_started(st, "odoo") and never_started(st, "nginx"), st.run("ps", "-a").stdout
    drill(
        "edge: empty db_password secret", "postgres refuses with one clear line; odoo and nginx never start"
    )
