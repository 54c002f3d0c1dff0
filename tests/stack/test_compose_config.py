"""docker-compose.yml / docker-compose.dev.yml / .env.example, checked through `docker compose config`."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.compose import REPO, SERVICES, Stack, dev_secret
from tests.support.images import TAG

pytestmark = [
    pytest.mark.unit,
    pytest.mark.skipif(not shutil.which("docker"), reason="no docker CLI (compose config)"),
]

DEV = ("docker-compose.yml", "docker-compose.dev.yml")
VAR_RE = re.compile(r"\$\{([A-Z0-9_]+)(?::?-([^}]*))?\}")
# The image folder of each service, whose `defaults` function owns its settings' defaults.
IMAGE_DIRS = {"postgres": "postgres", "backup": "postgres", "filestore": "postgres", "walstream": "postgres",
              "redis": "redis", "odoo": "docker", "nginx": "nginx"}
DEFAULT_RE = re.compile(r"\$\{([A-Z0-9_]+):=([^}]*)\}")
RENAMED_RE = re.compile(r"^\s*renamed ([A-Z0-9_]+) ([A-Z0-9_]+)$", re.M)


def image_defaults(service: str) -> dict[str, set[str]]:
    """VAR -> its default(s) in the `defaults` function of the service's image (entrypoint.sh,
    or lib/*.sh when the image's other programs share it); two values = a conditional one."""
    folder = REPO / IMAGE_DIRS[service]
    for f in [folder / "entrypoint.sh", *sorted((folder / "lib").glob("*.sh"))]:
        body = re.search(r"^defaults\(\) \{\n(.*?)^\}", f.read_text(), re.M | re.S) if f.is_file() else None
        if body:
            found: dict[str, set[str]] = {}
            for var, value in DEFAULT_RE.findall(body.group(1)):
                found.setdefault(var, set()).add(value)
            return found
    raise AssertionError(f"{service}: no defaults function in {folder}")


def deprecated_names(service: str) -> dict[str, str]:
    """OLD -> NEW: the names the service's entrypoint still reads, with a warning."""
    return dict(RENAMED_RE.findall((REPO / IMAGE_DIRS[service] / "entrypoint.sh").read_text()))


def bare_config(files: tuple[str, ...]) -> dict:
    """`docker compose config` with neither .env nor shell variables: value-less
    (pass-through) environment entries show as null."""
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root")}
    r = subprocess.run(Stack(files=files).cmd("config", "--format", "json"), env=env, cwd=REPO,
                       capture_output=True, text=True, check=True)
    return json.loads(r.stdout)


def seconds(duration: str) -> float:
    total = 0.0
    for value, unit in re.findall(r"(\d+(?:\.\d+)?)(h|ms|m|s)", duration):
        total += float(value) * {"h": 3600, "m": 60, "s": 1, "ms": 0.001}[unit]
    return total


@pytest.fixture(scope="module")
def base() -> dict:
    return Stack().config()


@pytest.fixture(scope="module")
def dev() -> dict:
    return Stack(files=DEV).config()


def test_no_version_key_and_four_services_built_by_the_project(base):
    version_key = re.compile(r"^version\s*:", re.M)  # obsolete in Compose v2
    assert version_key.search("services: {}\nversion: '3.8'\n")  # the check can fail
    for f in DEV:
        assert not version_key.search((REPO / f).read_text()), f
    assert set(base["services"]) == set(SERVICES)
    dockerfiles = {"postgres": "postgres/Dockerfile", "redis": "redis/Dockerfile",
                   "odoo": "docker/Dockerfile", "nginx": "nginx/Dockerfile"}
    names = {"postgres": "postgres", "backup": "postgres", "filestore": "postgres", "walstream": "postgres",
             "redis": "redis", "odoo": "erp", "nginx": "nginx"}
    for name, svc in base["services"].items():
        assert svc["image"] == f"loomworks/{names[name]}:{TAG}"
        if name in ("backup", "filestore", "walstream"):  # the postgres service's image, built once
            assert "build" not in svc and svc["depends_on"]["postgres"]["condition"] == "service_healthy"
            continue
        assert svc["build"]["context"] == str(REPO)
        assert svc["build"]["dockerfile"] == dockerfiles[name]
        assert svc["image"] == f"loomworks/{names[name]}:{TAG}"


def test_dependencies_wait_for_health(base):
    s = base["services"]
    assert s["odoo"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert s["odoo"]["depends_on"]["redis"]["condition"] == "service_healthy"
    assert s["nginx"]["depends_on"]["odoo"]["condition"] == "service_healthy"
    assert "depends_on" not in s["postgres"] and "depends_on" not in s["redis"]


def test_every_service_has_healthcheck_restart_limits_logs_and_hardening(base):
    for name, svc in base["services"].items():
        hc = svc["healthcheck"]
        assert hc["test"][0] == "CMD" and not hc.get("disable"), name
        assert svc["restart"] == "unless-stopped", name
        limits = svc["deploy"]["resources"]["limits"]
        assert float(limits["cpus"]) > 0 and int(limits["memory"]) > 0, name
        assert svc["logging"]["driver"] == "json-file", name
        assert svc["logging"]["options"]["max-size"] and svc["logging"]["options"]["max-file"], name
        assert "no-new-privileges:true" in svc["security_opt"], name
        assert svc["cap_drop"] == ["ALL"], name
    for name in ("filestore", "redis", "odoo", "nginx"):
        assert base["services"][name]["read_only"] is True, name


def test_named_volumes_declared_and_mounted(base):
    assert set(base["volumes"]) >= {"postgres_data", "odoo_data", "wal_archive", "pg_backups",
                                    "filestore_archive", "redis_data", "nginx_certs"}

    def mounts(svc: str) -> dict[str, str]:
        return {v["target"]: v["source"] for v in base["services"][svc]["volumes"] if v["type"] == "volume"}

    assert mounts("postgres") == {"/var/lib/postgresql/data": "postgres_data", "/wal_archive": "wal_archive",
                                  "/backups": "pg_backups"}
    assert mounts("backup") == {"/wal_archive": "wal_archive", "/backups": "pg_backups",
                                "/filestore_archive": "filestore_archive"}
    assert mounts("walstream") == {"/wal_archive": "wal_archive"}
    assert mounts("filestore") == {"/var/lib/odoo": "odoo_data", "/filestore_archive": "filestore_archive"}
    assert mounts("odoo") == {"/var/lib/odoo": "odoo_data"}
    assert mounts("redis") == {"/data": "redis_data"}
    assert mounts("nginx") == {"/var/lib/nginx/certs": "nginx_certs"}


def test_only_nginx_is_published_on_loopback_by_default(base):
    for name in ("postgres", "backup", "filestore", "walstream", "redis", "odoo"):
        assert not base["services"][name].get("ports"), name
    ports = {p["target"]: p for p in base["services"]["nginx"]["ports"]}
    assert set(ports) == {8069, 8080, 8443}
    assert all(p["host_ip"] == "127.0.0.1" for p in ports.values())


def test_host_ports_and_addresses_come_from_the_environment():
    st = Stack(extra_env={"BIND_ADDRESS": "0.0.0.0", "HTTP_PORT": "18080", "HTTPS_PORT": "18443",
                          "HTTP_LOCAL_PORT": "18069"})
    ports = {p["target"]: p for p in st.config()["services"]["nginx"]["ports"]}
    assert (ports[8080]["host_ip"], ports[8080]["published"]) == ("0.0.0.0", "18080")
    assert (ports[8443]["host_ip"], ports[8443]["published"]) == ("0.0.0.0", "18443")
    # The local listener stays on loopback unless LOCAL_BIND_ADDRESS says otherwise.
    assert (ports[8069]["host_ip"], ports[8069]["published"]) == ("127.0.0.1", "18069")


def test_production_settings(base):
    odoo = base["services"]["odoo"]
    env = odoo["environment"]
    assert env["PROXY_MODE"] == "True"
    assert env["DB_NAME"] == "loomworks" and env["LIST_DB"] == "false"
    # Passed through unset: the image's defaults apply (an empty dbfilter, 2 workers, 30 s).
    odoo_defaults = image_defaults("odoo")
    bare = bare_config(("docker-compose.yml",))["services"]["odoo"]["environment"]
    assert bare["DBFILTER"] is None and odoo_defaults["DBFILTER"] == {""}
    assert bare["WORKERS"] is None and int(*odoo_defaults["WORKERS"]) >= 2
    assert bare["GRACEFUL_TIMEOUT"] is None
    assert seconds(odoo["stop_grace_period"]) > int(*odoo_defaults["GRACEFUL_TIMEOUT"])
    assert env["REDIS_HOST"] == "redis" and env["REDIS_PASSWORD_FILE"].startswith("/run/secrets/")
    st = Stack(extra_env={"DBFILTER": "^%d$", "DB_NAME": ""})
    env = st.config()["services"]["odoo"]["environment"]
    # `config` re-escapes "$" as "$$" in its output; the container gets "^%d$".
    assert env["DBFILTER"].replace("$$", "$") == "^%d$" and env["DB_NAME"] == ""


def test_secrets_are_files_and_values_never_in_the_config(base):
    for name, svc in base["services"].items():
        for key, value in (svc.get("environment") or {}).items():
            assert not re.search(r"PASSWORD$|PASSWD$", key), f"{name}: {key} set as a plain value"
            if key.endswith("_FILE"):
                secret = Path(value).name
                assert value == f"/run/secrets/{secret}"
                assert any(s["source"] == secret for s in svc["secrets"]), (name, key)
    for name, secret in base["secrets"].items():
        if name == "ca":
            continue
        assert secret["file"] == str(REPO / "secrets.dev" / f"{name}.txt")
        assert "INSECURE" in dev_secret(name) or name == "admin_password"
    rendered = str(base)
    for f in (REPO / "secrets.dev").glob("*.txt"):
        value = f.read_text().strip()
        if "INSECURE" in value:
            assert value not in rendered, f.name


def test_production_secrets_dir_switches_every_secret(tmp_path):
    st = Stack(extra_env={"SECRETS_DIR": str(tmp_path)})
    cfg = st.config()
    assert all(s["file"].startswith(str(tmp_path)) for n, s in cfg["secrets"].items() if n != "ca")


def test_nginx_static_cache_settings_pass_through():
    # Unset: not passed, nginx's own defaults apply (tests/nginx: test_static_cache_defaults).
    env = bare_config(("docker-compose.yml",))["services"]["nginx"]["environment"]
    assert (env["NGINX_STATIC_CACHE_SIZE"], env["NGINX_STATIC_CACHE_VALID"]) == (None, None)
    assert image_defaults("nginx")["NGINX_STATIC_CACHE_SIZE"] == {"64m"}
    st = Stack(extra_env={"NGINX_STATIC_CACHE_SIZE": "128m", "NGINX_STATIC_CACHE_VALID": "1h"})
    env = st.config()["services"]["nginx"]["environment"]
    assert (env["NGINX_STATIC_CACHE_SIZE"], env["NGINX_STATIC_CACHE_VALID"]) == ("128m", "1h")


def test_image_build_args_pass_only_when_set(base):
    """Unset, the Dockerfile's defaults apply (no empty value overrides them); set, they pass."""
    assert "args" not in base["services"]["odoo"]["build"]
    pin = {"ODOO_COMMIT": "0" * 40, "ODOO_SHA256": "f" * 64, "ODOO_LANGS": "de fr"}
    args = Stack(extra_env=pin).config()["services"]["odoo"]["build"]["args"]
    assert args == pin


def test_env_example_documents_every_variable_with_its_default():
    """Each line against its owner: compose's `${VAR:-default}` for the stack's own and
    Compose-only settings, the image's `defaults` function for what compose passes through."""
    used: dict[str, set[str]] = {}
    for f in DEV:
        code = "\n".join(ln for ln in (REPO / f).read_text().splitlines() if not ln.lstrip().startswith("#"))
        for var, default in VAR_RE.findall(code):
            used.setdefault(var, set()).add(default)
    passed: dict[str, set[str]] = {}  # value-less environment entries -> services
    for cfg in (bare_config(("docker-compose.yml",)), bare_config(DEV)):
        for name, svc in cfg["services"].items():
            for var, value in (svc.get("environment") or {}).items():
                if value is None:
                    passed.setdefault(var, set()).add(name)
    deprecated: set[str] = set()
    for var, services in passed.items():
        for svc in services:
            renamed = deprecated_names(svc)
            if var in renamed:  # an old name, passed too so that old .env files still work
                assert renamed[var] in passed, f"{svc}: {var} is passed but not {renamed[var]}"
                deprecated.add(var)
                continue
            defaults = image_defaults(svc)
            assert var in defaults, f"{svc}: {var} is passed through but has no default in its image"
            used.setdefault(var, set()).update(defaults[var])
    documented = dict(re.findall(r"^([A-Z0-9_]+)=(.*)$", (REPO / ".env.example").read_text(), re.M))
    missing = sorted(set(used) - set(documented))
    assert not missing, f".env.example lacks {missing}"
    # Compose's own variable; every other line is read by compose (no stale or deprecated name).
    unread = sorted(set(documented) - set(used) - {"COMPOSE_BAKE"})
    assert not unread, f".env.example lists names nothing reads: {unread}"
    assert not deprecated & set(documented), deprecated & set(documented)

    def resolved(value: str) -> str:  # a default naming another setting, e.g. $POSTGRES_USER
        return re.sub(r"\$\{?([A-Z0-9_]+)\}?", lambda m: documented[m[1]], value)

    for var, defaults in used.items():
        defaults = {resolved(d) for d in defaults}
        assert defaults == {documented[var]}, f"{var}: owner {defaults} vs .env.example {documented[var]!r}"


def test_readme_defaults_are_their_owners():
    """A default shown in an image README's environment table is its image's `defaults` value
    (`A` / `B` rows pairwise; "empty" = ""); settings without a literal default are skipped."""
    tick = re.compile(r"`([^`]*)`")
    for service, folder in IMAGE_DIRS.items():
        owner = image_defaults(service)
        text = (REPO / folder / "README.md").read_text()
        table = re.search(r"^#+ Environment\n(.*?)(?=^#|\Z)", text, re.M | re.S)
        assert table, f"{folder}/README.md: no Environment section"
        checked = 0
        for row in re.findall(r"^\| (`.*)$", table.group(1), re.M):
            name_cell, default_cell = (c.strip() for c in row.split(" | ")[:2])
            names = [n for n in tick.findall(name_cell) if n in owner]
            if any("$(" in v for n in names for v in owner[n]):
                continue  # computed at start (e.g. nginx's RESOLVER)
            values = tick.findall(default_cell)
            if not names:
                continue
            if len(names) > 1:
                assert [{v} for v in values] == [owner[n] for n in names], row
            elif default_cell == "empty":
                assert owner[names[0]] == {""}, row
            elif values:
                assert set(values) == owner[names[0]], row
            else:
                continue
            checked += 1
        assert checked >= 4, f"{folder}/README.md: {checked} defaults checked"


def test_dev_override_mounts_addons_debugger_and_no_limits(dev, tmp_path):
    odoo = dev["services"]["odoo"]
    assert odoo["build"]["target"] == "dev"
    assert odoo["image"] == f"loomworks/erp-dev:{TAG}"
    binds = {v["target"]: v["source"] for v in odoo["volumes"] if v["type"] == "bind"}
    assert binds["/opt/loomworks/addons"] == str(REPO / "addons")
    debug = [p for p in odoo["ports"] if p["target"] == 5678]
    assert debug and debug[0]["host_ip"] == "127.0.0.1"
    env = odoo["environment"]
    assert env["WORKERS"] == "0" and env["DEBUGPY_PORT"] == "5678"
    # Dev mode is set one way: ODOO_DEV_MODE, which the entrypoint passes as --dev.
    assert not odoo.get("command"), odoo.get("command")
    assert set(env["ODOO_DEV_MODE"].split(",")) >= {"reload", "qweb", "xml"}
    for name, svc in dev["services"].items():
        assert "resources" not in (svc.get("deploy") or {}), name
    # Threaded Odoo serves the websocket on 8069 itself.
    assert dev["services"]["nginx"]["environment"]["ODOO_WS_PORT"] == "8069"
    st = Stack(files=DEV, extra_env={"LOOMWORKS_ADDONS_DIR": str(tmp_path)})
    odoo = st.config()["services"]["odoo"]
    assert {v["target"]: v["source"] for v in odoo["volumes"]}["/opt/loomworks/addons"] == str(tmp_path)


def test_only_the_dev_override_loads_the_mail_guard(base, dev):
    """loomworks_dev_mail (every mail to the catcher) is in the dev image only and loaded by the
    dev override only: production keeps its configured mail servers."""
    env = base["services"]["odoo"]["environment"]
    assert "ODOO_SERVER_WIDE_MODULES" not in env and "dev-addons" not in (env.get("ADDONS_PATH") or "")
    entrypoint = (REPO / "docker" / "entrypoint.sh").read_text()
    fixed = re.search(r"^server_wide_modules\(\) \{\n(.*?)^\}", entrypoint, re.M | re.S).group(1)
    assert "loomworks_health" in fixed and "dev_mail" not in fixed
    stages = re.split(r"^FROM ", (REPO / "docker" / "Dockerfile").read_text(), flags=re.M)
    naming = sorted(st.split("\n", 1)[0] for st in stages[1:]
                    if any("dev-addons" in line for line in st.splitlines() if not line.startswith("#")))
    assert naming == ["base AS dev-addons", "common AS dev"], naming
    assert not (REPO / "addons" / "loomworks_dev_mail").exists()  # INSTALL_ADDONS installs addons/*
    env = dev["services"]["odoo"]["environment"]
    assert env["ODOO_SERVER_WIDE_MODULES"] == "loomworks_dev_mail"
    assert (env["ODOO_SMTP_SERVER"], env["ODOO_SMTP_PORT"]) == ("mail", "1025")
    assert env["ADDONS_PATH"] == "/opt/loomworks/dev-addons"
    # a developer's ADDONS_PATH is kept, after the guard's directory
    odoo = Stack(files=DEV, extra_env={"ADDONS_PATH": "/mnt/a,/mnt/b"}).config()["services"]["odoo"]
    assert odoo["environment"]["ADDONS_PATH"] == "/opt/loomworks/dev-addons,/mnt/a,/mnt/b"
