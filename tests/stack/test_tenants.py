"""Tenants in the Compose stack: `tenant create|list|backup|drop` through `docker compose exec`,
nginx + dbfilter routing each new tenant without a restart, and start-up migrations that cover
every tenant database. One multi-tenant stack (DB_NAME= and DBFILTER=^%d$) for the module, with
an editable copy of the test addon mounted in place of the repository's."""

from __future__ import annotations

import io
import re
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.support.compose import REPO, Stack, dev_secret
from tests.support.containers import addon_copy
from tests.support.rpc import authenticate, call_kw

pytestmark = [pytest.mark.docker, pytest.mark.odoo]

DOMAIN = "loomworks.localhost"  # LOOMWORKS_DOMAIN's default
ADMIN_FILE = "/run/secrets/admin_password"  # the stack's admin password secret
TENANTS = ("acme", "globex")


@pytest.fixture(scope="module")
def addon(tmp_path_factory) -> Path:
    return addon_copy(tmp_path_factory.mktemp("lwtest-tenant-addon"))


@pytest.fixture(scope="module")
def stack(stack_tag: str, addon: Path, tmp_path_factory) -> Iterator[Stack]:
    override = tmp_path_factory.mktemp("lwtest-tenant-compose") / "compose.tenants.yml"
    override.write_text(f"services:\n  odoo:\n    volumes:\n"
                        f"      - {addon}:/opt/loomworks/addons/lwtest_slow:ro\n")
    st = Stack(files=("docker-compose.yml", str(override)), prefix="lwtest-tenants",
               extra_env={"DB_NAME": "", "DBFILTER": "^%d$"})
    st.start()
    try:
        yield st
    finally:
        st.destroy()


def tenant(st: Stack, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    r = st.run("exec", "-T", "odoo", "tenant", *args, check=False, timeout=900)
    if check:
        assert r.returncode == 0, f"tenant {' '.join(args)}: {r.returncode}\n{r.stdout}\n{r.stderr[-4000:]}"
    return r


def session(st: Stack, name: str) -> requests.Session:
    """A session on <name>.<domain> through nginx's local listener, logged in as admin."""
    s = requests.Session()
    s.headers["Host"] = f"{name}.{DOMAIN}"
    body = authenticate(s, st.url(), name, dev_secret("admin_password"))
    assert "error" not in body and body["result"]["uid"], body
    return s


def test_create_two_tenants_each_routed_without_restart(stack):
    started = stack.inspect("odoo")["State"]["StartedAt"]
    tenant(stack, "create", "acme", "--admin-password-file", ADMIN_FILE, "--lang", "fr_FR")
    tenant(stack, "create", "globex", "--admin-password-file", ADMIN_FILE)
    assert tenant(stack, "list").stdout.split() == list(TENANTS)
    assert stack.inspect("odoo")["State"]["StartedAt"] == started  # no restart
    acme, globex = session(stack, "acme"), session(stack, "globex")
    call_kw(acme, stack.url(), "res.partner", "create", {"name": "Acme only"})
    find = [[["name", "=", "Acme only"]]]
    assert call_kw(acme, stack.url(), "res.partner", "search_count", *find) == 1
    assert call_kw(globex, stack.url(), "res.partner", "search_count", *find) == 0
    # the Host picks the database: acme's login is refused on globex's host
    s = requests.Session()
    s.headers["Host"] = f"globex.{DOMAIN}"
    assert "error" in authenticate(s, stack.url(), "acme", dev_secret("admin_password"))
    lang = call_kw(acme, stack.url(), "res.users", "read", [2], ["lang"])[0]["lang"]
    assert lang == "fr_FR"


def test_bad_tenant_input_is_one_clear_line(stack):
    cases = {
        ("create", "Bad_Name", "--admin-password-file", ADMIN_FILE):
            "tenant name 'Bad_Name' must be a host name label",
        ("create", "acme", "--admin-password-file", ADMIN_FILE): "tenant acme exists already",
        ("create", "initech", "--admin-password-file", ADMIN_FILE, "--modules", "no_such_module"):
            "--modules: no module named 'no_such_module'",
        ("create", "initech", "--admin-password-file", "/nope"):
            "--admin-password-file: cannot read file /nope",
        ("drop", "globex"): "dropping globex deletes its database and files: add --yes",
        ("backup", "nosuch"): "tenant nosuch does not exist",
    }
    for args, message in cases.items():
        r = tenant(stack, *args, check=False)
        errors = [ln for ln in r.stderr.splitlines() if "error:" in ln]
        assert r.returncode == 1 and len(errors) == 1 and message in errors[0], (args, r.stderr[-3000:])
    assert tenant(stack, "list").stdout.split() == list(TENANTS)  # nothing changed


def test_restart_migrates_every_tenant(stack, addon):
    manifest = addon / "__manifest__.py"
    text = manifest.read_text()
    bumped = "18.0.1.0.1"
    assert '"version": "18.0.1.0.0"' in text
    manifest.write_text(text.replace('"version": "18.0.1.0.0"', f'"version": "{bumped}"'))
    stack.run("restart", "odoo", timeout=300)
    stack.wait_service_healthy("odoo", timeout=600)
    logs = stack.run("logs", "--no-color", "odoo").stdout
    for name in TENANTS:
        assert re.search(rf"migration: updated lwtest_slow in \d+ s \({name}\)", logs), logs[-5000:]
        q = "SELECT latest_version FROM ir_module_module WHERE name = 'lwtest_slow'"
        assert stack.psql(q, db=name).endswith(bumped)
    # each still sees only its own data
    acme, globex = session(stack, "acme"), session(stack, "globex")
    find = [[["name", "=", "Acme only"]]]
    assert call_kw(acme, stack.url(), "res.partner", "search_count", *find) == 1
    assert call_kw(globex, stack.url(), "res.partner", "search_count", *find) == 0


def test_backup_and_drop(stack):
    r = subprocess.run(stack.cmd("exec", "-T", "odoo", "tenant", "backup", "acme", "--output", "-"),
                       env=stack.env, cwd=REPO, capture_output=True, timeout=600, check=False)
    assert r.returncode == 0, r.stderr[-3000:]
    with zipfile.ZipFile(io.BytesIO(r.stdout)) as z:
        names = z.namelist()
        assert "dump.sql" in names and "manifest.json" in names, names[:20]
        assert b"Acme only" in z.read("dump.sql")
    out = tenant(stack, "backup", "globex")
    saved = re.search(r"backed up globex to /var/lib/odoo/backups/globex-\d{8}-\d{6}\.zip", out.stderr)
    assert saved, out.stderr
    tenant(stack, "drop", "globex", "--yes")
    assert tenant(stack, "list").stdout.split() == ["acme"]
    assert stack.psql("SELECT count(*) FROM pg_database WHERE datname = 'globex'") == "0"
    s = requests.Session()
    s.headers["Host"] = f"globex.{DOMAIN}"
    assert "error" in authenticate(s, stack.url(), "globex", dev_secret("admin_password"))
