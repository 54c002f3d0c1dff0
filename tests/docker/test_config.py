"""Environment -> rendered /run/odoo/odoo.conf, validation, and secrets hygiene.

Uses the entrypoint's `check-config` command: the real validation and rendering code,
without a database. The rendered file is read back from the stopped container.
"""

from __future__ import annotations

import configparser
import io
import secrets
import tarfile
from collections.abc import Iterator

import pytest

from tests.support.containers import Resources, logs, secret_file

pytestmark = [pytest.mark.docker, pytest.mark.odoo]

CONF = "/run/odoo/odoo.conf"


@pytest.fixture
def made(docker_client) -> Iterator[Resources]:
    made = Resources(docker_client)
    yield made
    made.cleanup()


def check_config(made: Resources, image, env: dict[str, str], volumes=None) -> tuple[int, str, object]:
    c = made.container(image, ["check-config"], role="cfg", environment=env, volumes=volumes or {})
    rc = c.wait(timeout=60)["StatusCode"]
    return rc, logs(c), c


def read_file(container, path: str) -> tuple[str, dict]:
    stream, stat = container.get_archive(path)
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
        member = tar.getmembers()[0]
        data = tar.extractfile(member).read().decode()
        return data, {"mode": member.mode, "uid": member.uid}


def rendered(made: Resources, image, env, volumes=None) -> tuple[dict[str, str], dict, str]:
    rc, out, c = check_config(made, image, env, volumes)
    assert rc == 0, out
    text, meta = read_file(c, CONF)
    cp = configparser.RawConfigParser()
    cp.read_string(text)
    return dict(cp["options"]), meta, out


def test_defaults(made, erp_image):
    opts, meta, _ = rendered(made, erp_image, {})
    assert meta["mode"] & 0o777 == 0o600 and meta["uid"] == 1000
    expect = {
        "db_host": "postgres", "db_port": "5432", "db_user": "odoo", "db_password": "", "db_name": "",
        "proxy_mode": "False", "list_db": "True", "workers": "2", "max_cron_threads": "1",
        "limit_time_cpu": "60", "limit_time_real": "120", "limit_memory_soft": "2147483648",
        "limit_memory_hard": "2684354560", "log_level": "info", "without_demo": "all",
        "data_dir": "/var/lib/odoo", "server_wide_modules": "base,web,loomworks_health",
        "health_connect_timeout": "2", "health_statement_timeout": "2",
        "db_sslmode": "prefer", "dbfilter": "",
    }
    assert {k: opts.get(k) for k in expect} == expect
    assert opts["addons_path"].split(",")[0] == "/opt/loomworks/addons"
    assert opts["admin_passwd"].startswith("$pbkdf2-sha512$")  # random one when not given


ALL_SET = {
    "DB_HOST": "db.internal", "DB_PORT": "6543", "DB_USER": "erp", "DB_PASSWORD": "pw-1",
    "DB_NAME": "acme", "PROXY_MODE": "yes", "DBFILTER": "^%d$", "LIST_DB": "on", "WORKERS": "5",
    "MAX_CRON_THREADS": "3", "LIMIT_TIME_CPU": "90", "LIMIT_TIME_REAL": "240",
    "LIMIT_MEMORY_SOFT": "1000", "LIMIT_MEMORY_HARD": "2000", "LOG_LEVEL": "warn",
    "HEALTH_CONNECT_TIMEOUT": "4", "HEALTH_STATEMENT_TIMEOUT": "6", "DB_SSLMODE": "require",
}


def test_every_variable_reaches_the_config(made, erp_image):
    opts, _, out = rendered(made, erp_image, ALL_SET)
    assert opts["db_host"] == "db.internal" and opts["db_port"] == "6543" and opts["db_user"] == "erp"
    assert opts["db_password"] == ALL_SET["DB_PASSWORD"]
    assert opts["db_name"] == "acme" and opts["db_sslmode"] == "require"
    assert opts["proxy_mode"] == "True" and opts["dbfilter"] == "^%d$" and opts["list_db"] == "True"
    assert opts["workers"] == "5" and opts["max_cron_threads"] == "3"
    assert (opts["limit_time_cpu"], opts["limit_time_real"]) == ("90", "240")
    assert (opts["limit_memory_soft"], opts["limit_memory_hard"]) == ("1000", "2000")
    assert opts["log_level"] == "warn"
    assert (opts["health_connect_timeout"], opts["health_statement_timeout"]) == ("4", "6")
    assert "pw-1" not in out


DEPRECATED = {"ODOO_WORKERS": ("WORKERS", "workers", "5"),
              "ODOO_MAX_CRON_THREADS": ("MAX_CRON_THREADS", "max_cron_threads", "3"),
              "ODOO_LIMIT_TIME_CPU": ("LIMIT_TIME_CPU", "limit_time_cpu", "90"),
              "ODOO_LIMIT_TIME_REAL": ("LIMIT_TIME_REAL", "limit_time_real", "240"),
              "ODOO_LIMIT_MEMORY_SOFT": ("LIMIT_MEMORY_SOFT", "limit_memory_soft", "1000"),
              "ODOO_LIMIT_MEMORY_HARD": ("LIMIT_MEMORY_HARD", "limit_memory_hard", "2000"),
              "ODOO_LOG_LEVEL": ("LOG_LEVEL", "log_level", "warn")}


def test_deprecated_names_still_work_with_one_warning_each(made, erp_image):
    opts, _, out = rendered(made, erp_image, {old: v for old, (_, _, v) in DEPRECATED.items()})
    for old, (new, option, value) in DEPRECATED.items():
        assert opts[option] == value, option
        assert out.count(f"entrypoint: warning: {old} is deprecated; use {new}\n") == 1, out
    # the image's own name wins over an old one
    opts, _, out = rendered(made, erp_image, {"WORKERS": "4", "ODOO_WORKERS": "5"})
    assert opts["workers"] == "4"
    assert "entrypoint: warning: ODOO_WORKERS is deprecated and ignored (WORKERS is set); use WORKERS" in out


def test_list_db_defaults_off_with_db_name(made, erp_image):
    opts, _, _ = rendered(made, erp_image, {"DB_NAME": "acme"})
    assert opts["list_db"] == "False"


def test_file_variants_and_master_password_hashed(made, erp_image, tmp_path):
    from passlib.context import CryptContext

    master = "master-" + secrets.token_urlsafe(12)
    dbpw = "db-" + secrets.token_urlsafe(12)
    vols = {**secret_file(tmp_path, "master", master), **secret_file(tmp_path, "dbpw", dbpw)}
    env = {"ODOO_ADMIN_PASSWD_FILE": "/run/secrets/master", "DB_PASSWORD_FILE": "/run/secrets/dbpw"}
    opts, _, out = rendered(made, erp_image, env, vols)
    assert opts["db_password"] == dbpw
    assert opts["admin_passwd"].startswith("$pbkdf2-sha512$") and master not in opts["admin_passwd"]
    assert CryptContext(["pbkdf2_sha512"]).verify(master, opts["admin_passwd"])
    assert master not in out and dbpw not in out


def test_both_value_and_file_is_an_error(made, erp_image, tmp_path):
    env = {"DB_PASSWORD": "y", "DB_PASSWORD_FILE": "/run/secrets/pw"}
    rc, out, _ = check_config(made, erp_image, env, secret_file(tmp_path, "pw", "x"))
    assert rc != 0 and "both DB_PASSWORD and DB_PASSWORD_FILE are set" in out


@pytest.mark.parametrize(("var", "value", "message"), [
    ("DB_PORT", "abc", "DB_PORT must be a non-negative integer, got 'abc'"),
    ("DB_PORT", "70000", "DB_PORT must be <= 65535"),
    ("DB_HOST", "bad host", "DB_HOST must be a host name or address"),
    ("DB_NAME", "x;drop", "DB_NAME may hold letters, digits"),
    ("PROXY_MODE", "maybe", "PROXY_MODE must be a boolean"),
    ("LIST_DB", "2", "LIST_DB must be a boolean"),
    ("AUTO_MIGRATE", "sometimes", "AUTO_MIGRATE must be a boolean"),
    ("WORKERS", "-1", "WORKERS must be a non-negative integer"),
    ("WORKERS", "1", "WORKERS must be 0 (threaded, development) or >= 2"),
    ("MAX_CRON_THREADS", "x", "MAX_CRON_THREADS must be a non-negative integer"),
    ("LIMIT_TIME_REAL", "0", "LIMIT_TIME_REAL must be >= 1"),
    ("LIMIT_MEMORY_HARD", "10", "LIMIT_MEMORY_HARD must be >= LIMIT_MEMORY_SOFT"),
    ("LOG_LEVEL", "loud", "LOG_LEVEL must be one of"),
    ("DB_WAIT_TIMEOUT", "soon", "DB_WAIT_TIMEOUT must be a non-negative integer"),
    ("GRACEFUL_TIMEOUT", "0", "GRACEFUL_TIMEOUT must be >= 1"),
    ("LISTEN_BACKLOG", "many", "LISTEN_BACKLOG must be a non-negative integer"),
    ("HEALTH_CONNECT_TIMEOUT", "1.5", "HEALTH_CONNECT_TIMEOUT must be a non-negative integer"),
    ("DB_SSLMODE", "always", "DB_SSLMODE must be one of"),
    ("ODOO_ADMIN_PASSWD_FILE", "/nope", "ODOO_ADMIN_PASSWD_FILE: cannot read file /nope"),
])
def test_bad_values_rejected_with_one_clear_line(made, erp_image, var, value, message):
    rc, out, _ = check_config(made, erp_image, {var: value})
    assert rc == 1
    errors = [line for line in out.splitlines() if "error:" in line]
    assert len(errors) == 1 and message in errors[0], out


def test_foreign_owned_bind_mount_is_a_clear_error(made, erp_image, tmp_path):
    d = tmp_path / "data"
    d.mkdir(mode=0o755)  # owned by root on the host, not writable by uid 1000
    rc, out, _ = check_config(made, erp_image, {}, {str(d): {"bind": "/var/lib/odoo", "mode": "rw"}})
    assert rc == 1
    assert "/var/lib/odoo is not writable by uid 1000 (owner uid 0)" in out


def test_named_volume_is_writable(made, erp_image):
    rc, out, _ = check_config(made, erp_image, {}, {made.volume(): {"bind": "/var/lib/odoo", "mode": "rw"}})
    assert rc == 0, out
