"""Any Odoo option (ODOO_<OPTION>[_FILE], conf.d fragments), addon directories, chosen
modules (INSTALL_ADDONS), and a start that fails at once when retrying cannot help.

Rendering is checked with the entrypoint's `check-config` (the real code, no database);
mail, module installs and logins against the lab's real PostgreSQL and a real SMTP server.
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import socket
import struct
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.containers import Resources, logs, make_readable, secret_file, wait_health
from tests.support.fileserver import bridge_host_address
from tests.support.smtp import smtp_server
from tests.support.wait import wait_for

CONF = "/run/odoo/odoo.conf"

pytestmark = [pytest.mark.docker, pytest.mark.odoo]


@pytest.fixture
def made(docker_client) -> Iterator[Resources]:
    made = Resources(docker_client)
    yield made
    made.cleanup()


def check_config(made: Resources, image: str, env: dict, volumes: dict | None = None):
    c = made.container(image, ["check-config"], role="cfg", environment=env, volumes=volumes or {})
    rc = c.wait(timeout=90)["StatusCode"]
    return rc, logs(c), c


def rendered(made: Resources, image: str, env: dict, volumes: dict | None = None):
    import configparser
    import io
    import tarfile

    rc, out, c = check_config(made, image, env, volumes)
    assert rc == 0, out
    stream, _ = c.get_archive(CONF)
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
        text = tar.extractfile(tar.getmembers()[0]).read().decode()
    cp = configparser.RawConfigParser(interpolation=None)
    cp.read_string(text)
    return cp, out


def error_lines(out: str) -> list[str]:
    return [line for line in out.splitlines() if "error:" in line]


def module(root: Path, name: str, version: str = "18.0.1.0.0", **manifest) -> Path:
    """A minimal Odoo module ``name`` under ``root``."""
    d = root / name
    d.mkdir(parents=True)
    (d / "__init__.py").write_text("")
    data = {"name": name, "version": version, "depends": ["base"], "license": "LGPL-3", **manifest}
    (d / "__manifest__.py").write_text(repr(data) + "\n")
    return d


# --- any option ----------------------------------------------------------------------------


def test_any_option_from_variables_files_and_conf_d_in_order(made, erp_image, tmp_path):
    smtp_pw = "smtp-" + secrets.token_urlsafe(12)
    confd = tmp_path / "conf.d"
    confd.mkdir()
    (confd / "10-mail.conf").write_text(
        "[options]\nsmtp_port = 25\ndb_maxconn = 16\nlimit_request = 500\n\n[queue_job]\nchannels = root:2\n")
    (confd / "20-site.conf").write_text("[options]\ndb_maxconn = 24\nlog_handler = :INFO,werkzeug:WARNING\n")
    (confd / "README.txt").write_text("not a fragment: only *.conf are read\n[options]\nnope = 1\n")
    make_readable(tmp_path)
    env = {"ODOO_SMTP_SERVER": "mail.internal", "ODOO_SMTP_PORT": "2525", "ODOO_SMTP_USER": "erp",
           "ODOO_SMTP_PASSWORD_FILE": "/run/secrets/smtp", "ODOO_EMAIL_FROM": "erp@example.com",
           "ODOO_SMTP_SSL": "no", "ODOO_DB_MAXCONN": "32", "ODOO_SERVER_WIDE_MODULES": "web,queue_job",
           "ODOO_GEOIP_CITY_DB": "/usr/share/GeoIP/City.mmdb", "WORKERS": "3"}
    vols = {**secret_file(tmp_path, "smtp", smtp_pw), str(confd): {"bind": "/etc/odoo/conf.d", "mode": "ro"}}
    cp, out = rendered(made, erp_image, env, vols)
    o = cp["options"]
    assert (o["smtp_server"], o["smtp_user"], o["smtp_password"]) == ("mail.internal", "erp", smtp_pw)
    assert o["email_from"] == "erp@example.com" and o["smtp_ssl"] == "False"
    # order: the image's variables < conf.d fragments (name order) < ODOO_<OPTION> variables
    assert o["smtp_port"] == "2525" and o["db_maxconn"] == "32" and o["limit_request"] == "500"
    assert o["log_handler"] == ":INFO,werkzeug:WARNING" and o["workers"] == "3"
    assert o["geoip_city_db"] == "/usr/share/GeoIP/City.mmdb"
    # the image's server-wide modules stay; the variable adds to them
    assert o["server_wide_modules"] == "base,web,loomworks_health,queue_job"
    assert cp["queue_job"]["channels"] == "root:2"  # other sections pass through
    assert "nope" not in o
    assert smtp_pw not in out
    assert "config: set " in out and "smtp_password" in out  # names, never values


@pytest.mark.parametrize(("env", "message"), [
    ({"ODOO_SMTP_SEVER": "x"},
     "ODOO_SMTP_SEVER: unknown Odoo option 'smtp_sever' (did you mean smtp_server?)"),
    ({"ODOO_DB_HOST": "x"}, "ODOO_DB_HOST: db_host is set with DB_HOST; use DB_HOST"),
    ({"ODOO_WORKERS_COUNT": "4"}, "ODOO_WORKERS_COUNT: unknown Odoo option 'workers_count'"),
    ({"ODOO_DATA_DIR": "/tmp"}, "ODOO_DATA_DIR: data_dir is fixed by the image"),
    ({"ODOO_INIT": "sale"}, "ODOO_INIT: unknown Odoo option 'init'"),
    ({"ODOO_DB_MAXCONN": "lots"}, "ODOO_DB_MAXCONN: db_maxconn must be an integer, got 'lots'"),
    ({"ODOO_SMTP_SSL": "maybe"}, "ODOO_SMTP_SSL: smtp_ssl must be a boolean (true/false), got 'maybe'"),
    ({"ODOO_SMTP_PASSWORD_FILE": "/nope"}, "ODOO_SMTP_PASSWORD_FILE: cannot read file /nope"),
    ({"ODOO_SMTP_USER": "a", "ODOO_SMTP_USER_FILE": "/etc/hostname"},
     "both ODOO_SMTP_USER and ODOO_SMTP_USER_FILE are set; use one of them"),
    ({"ADDONS_PATH": "/nowhere"}, "ADDONS_PATH: /nowhere does not exist or is not a directory"),
    ({"ADDONS_PATH": "/etc"}, "ADDONS_PATH: /etc holds no Odoo module"),
    ({"INSTALL_ADDONS": "base,no_such_module"},
     "INSTALL_ADDONS: no module named 'no_such_module' in the addons path"),
])
def test_bad_option_or_addon_setting_is_one_clear_line(made, erp_image, env, message):
    rc, out, _ = check_config(made, erp_image, env)
    assert rc == 1
    errors = error_lines(out)
    assert len(errors) == 1 and message in errors[0], out


def test_unknown_option_in_a_fragment_names_the_file(made, erp_image, tmp_path):
    confd = tmp_path / "conf.d"
    confd.mkdir()
    (confd / "50-mail.conf").write_text("[options]\nsmtp_server = mail\nsmtp_pasword = x\n")
    make_readable(tmp_path)
    rc, out, _ = check_config(made, erp_image, {}, {str(confd): {"bind": "/etc/odoo/conf.d", "mode": "ro"}})
    assert rc == 1
    errors = error_lines(out)
    assert len(errors) == 1, out
    assert ("/etc/odoo/conf.d/50-mail.conf: unknown Odoo option 'smtp_pasword' (did you mean smtp_password?)"
            in errors[0])


# --- addon directories ---------------------------------------------------------------------


def test_addon_directories_joined_in_the_stated_order(made, erp_image, tmp_path):
    for repo in ("oca-web", "vendor", "mnt"):
        module(tmp_path / repo, f"lwx_{repo.replace('-', '_')}")
    make_readable(tmp_path)
    vols = {str(tmp_path / "oca-web"): {"bind": "/srv/addons/oca-web", "mode": "ro"},
            str(tmp_path / "vendor"): {"bind": "/srv/addons/vendor", "mode": "ro"},
            str(tmp_path / "mnt"): {"bind": "/mnt/extra-addons", "mode": "ro"}}
    env = {"ADDONS_PATH": "/srv/addons/vendor,/srv/addons/oca-web",
           "INSTALL_ADDONS": "loomworks_health,lwx_vendor,lwx_mnt"}
    cp, out = rendered(made, erp_image, env, vols)
    assert cp["options"]["addons_path"].split(",") == [
        "/srv/addons/vendor", "/srv/addons/oca-web", "/mnt/extra-addons", "/opt/loomworks/addons",
        "/opt/odoo/addons", "/opt/odoo/odoo/addons"]
    assert "config: addons_path /srv/addons/vendor," in out


def test_unreadable_addon_directory_and_missing_python_package_named(made, erp_image, tmp_path):
    secret_dir = tmp_path / "private"
    module(secret_dir, "lwx_private")
    secret_dir.chmod(0o700)  # root's, not readable by uid 1000
    rc, out, _ = check_config(made, erp_image, {"ADDONS_PATH": "/srv/private"},
                              {str(secret_dir): {"bind": "/srv/private", "mode": "ro"}})
    assert rc == 1 and "ADDONS_PATH: /srv/private is not readable by uid 1000" in error_lines(out)[0], out

    needs = tmp_path / "needs"
    module(needs, "lwx_needs_pkg", external_dependencies={"python": ["lwtest-not-a-package"]})
    module(needs, "lwx_uses", depends=["lwx_needs_pkg"])
    make_readable(needs)
    rc, out, _ = check_config(made, erp_image, {"ADDONS_PATH": "/srv/needs", "INSTALL_ADDONS": "lwx_uses"},
                              {str(needs): {"bind": "/srv/needs", "mode": "ro"}})
    errors = error_lines(out)
    assert rc == 1 and len(errors) == 1, out
    assert ("INSTALL_ADDONS: module 'lwx_needs_pkg' (a dependency of lwx_uses) needs the Python package "
            "'lwtest-not-a-package', which is not in the image") in errors[0]


# --- chosen modules in new and existing databases ------------------------------------------


def test_install_addons_decides_new_databases_and_reaches_existing_ones(lab, pg, addon_dir, tmp_path):
    db = "lwinstall"
    admin = tmp_path / "s"
    admin.mkdir()
    env = {"DB_NAME": db, "ADMIN_PASSWORD_FILE": "/run/secrets/admin", "INSTALL_ADDONS": "loomworks_health"}
    vols = secret_file(admin, "admin", secrets.token_urlsafe(12))
    installed = ("SELECT string_agg(name, ',' ORDER BY name) FROM ir_module_module "
                 "WHERE state = 'installed' AND name IN ('loomworks_health', 'lwtest_slow')")
    try:
        c = lab.erp(env, addon=addon_dir, volumes=vols)
        wait_health(c, timeout=400)
        assert "init: initialising database lwinstall with base, loomworks_health (no demo data)" in logs(c)
        assert pg.psql(installed, db=db) == "loomworks_health"  # the mounted lwtest_slow is not chosen
        c.remove(force=True)

        # the default (every Loomworks addon) now includes lwtest_slow: installed at start
        c = lab.erp({**env, "INSTALL_ADDONS": ""}, addon=addon_dir, volumes=vols)
        wait_health(c, timeout=400)
        out = logs(c)
        assert re.search(r"install: installed lwtest_slow in \d+ s \(lwinstall\)", out), out[-4000:]
        assert pg.psql(installed, db=db) == "loomworks_health,lwtest_slow"
        c.remove(force=True)

        # nothing left to install, and the checksums were recorded: no update either
        c = lab.erp({**env, "INSTALL_ADDONS": ""}, addon=addon_dir, volumes=vols)
        wait_health(c, timeout=400)
        out = logs(c)
        assert "migration: up to date (lwinstall)" in out and "install: " not in out, out[-4000:]
    finally:
        pg.psql(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")


# --- fail fast -----------------------------------------------------------------------------


@pytest.mark.parametrize(("env", "server_says"), [
    ({"DB_PASSWORD": "wrong-password"}, 'password authentication failed for user "odoo"'),
    ({"DB_USER": "lwtest_nobody", "DB_PASSWORD": "x"},
     'password authentication failed for user "lwtest_nobody"'),
])
def test_refused_login_fails_at_once_with_the_server_message(lab, env, server_says):
    c = lab.erp({**env, "DB_WAIT_TIMEOUT": "600"}, healthcheck=None)
    rc = c.wait(timeout=120)["StatusCode"]  # far below the 600 s budget: not retried
    out = logs(c)
    assert rc == 1
    assert "waiting for PostgreSQL" not in out, out
    errors = error_lines(out)
    assert len(errors) == 1 and "refused the login" in errors[0] and "(not retried)" in errors[0], out
    assert server_says in errors[0], out


def test_missing_role_with_trust_auth_fails_at_once(lab, pg):
    """Where the server does not hide it behind a password failure, the missing role is named."""
    hba = '"$PGDATA/pg_hba.conf"'  # the image's PGDATA, expanded in the container
    rc, _ = pg.container.exec_run(["sh", "-c", f"sed -i '1i host all lwtest_ghost all trust' {hba}"],
                                  user="postgres")
    assert rc == 0
    pg.psql("SELECT pg_reload_conf()")
    c = lab.erp({"DB_HOST": pg.name, "DB_USER": "lwtest_ghost", "DB_WAIT_TIMEOUT": "600"}, db=False,
                healthcheck=None)
    try:
        rc = c.wait(timeout=120)["StatusCode"]
        out = logs(c)
        assert rc == 1 and "waiting for PostgreSQL" not in out, out
        assert 'role "lwtest_ghost" does not exist' in error_lines(out)[0], out
    finally:
        pg.container.exec_run(["sh", "-c", f"sed -i '/lwtest_ghost/d' {hba}"], user="postgres")
        pg.psql("SELECT pg_reload_conf()")


def test_refused_connection_keeps_retrying(lab, pg):
    c = lab.erp({"DB_PORT": "5499", "DB_WAIT_TIMEOUT": "4"}, healthcheck=None)
    assert c.wait(timeout=60)["StatusCode"] == 1
    out = logs(c)
    assert len(re.findall(r"waiting for PostgreSQL at \S+:5499 \(attempt \d+", out)) >= 2, out
    errors = error_lines(out)
    assert len(errors) == 1 and "not ready after 4s (DB_WAIT_TIMEOUT)" in errors[0], out
    assert "Connection refused" in errors[0] and "refused the login" not in errors[0]


# --- outgoing mail through an authenticating SMTP server -----------------------------------


def test_odoo_sends_mail_through_the_configured_smtp_server(seeded, lab, pg, docker_client, tmp_path):
    host = bridge_host_address(docker_client.networks.get(lab.net).attrs)
    smtp_pw = "smtp-" + secrets.token_urlsafe(12)
    subject = f"lwtest mail {secrets.token_hex(4)}"
    with smtp_server("erp-mailer", smtp_pw, host=host) as (box, port):
        env = {"DB_NAME": "lwtest", "ODOO_SMTP_SERVER": host, "ODOO_SMTP_PORT": str(port),
               "ODOO_SMTP_USER": "erp-mailer", "ODOO_SMTP_PASSWORD_FILE": "/run/secrets/smtp",
               "ODOO_EMAIL_FROM": "erp@lwtest.example"}
        c = lab.erp(env, volumes=secret_file(tmp_path, "smtp", smtp_pw))
        wait_health(c, timeout=300)
        script = ("ms = env['ir.mail_server']\n"
                  "msg = ms.build_email('erp@lwtest.example', ['someone@lwtest.example'], "
                  f"'{subject}', 'hello')\n"
                  "print('SENT', ms.send_email(msg))\n")
        shell = f"printf %s \"{script}\" | odoo shell -d lwtest --no-http --log-level=warn"
        r = c.exec_run(["bash", "-c", shell])
        out = r.output.decode(errors="replace")
        assert "SENT" in out, out[-3000:]
        got = wait_for(lambda: box.find(subject), 30, "the mail at the SMTP server")
        assert ("erp-mailer", True) in box.logins
        assert got.get_content().strip() == "hello" and box.envelopes[-1][1] == ["someone@lwtest.example"]
        # the password given as a file is in the 0600 config only
        top = subprocess.run(["docker", "top", c.id, "-eo", "pid,args"], capture_output=True, text=True,
                             check=True).stdout
        environ = c.exec_run(["bash", "-c", "cat /proc/[0-9]*/environ 2>/dev/null | tr '\\0' '\\n'"],
                             user="root").output.decode(errors="replace")
        c.reload()
        assert "odoo" in top and "ODOO_SMTP_PASSWORD_FILE=/run/secrets/smtp" in json.dumps(c.attrs)
        seen = {"ps": top, "environ": environ, "logs": logs(c), "inspect": json.dumps(c.attrs)}
        for where, text in seen.items():
            assert smtp_pw not in text, f"SMTP password in {where}"


@contextlib.contextmanager
def starting_up_server(host: str) -> Iterator[int]:
    """A stand-in for a PostgreSQL server in recovery: it answers every connection as the
    real one does then (refuses SSL, then FATAL 57P03 "the database system is starting up")."""
    srv = socket.create_server((host, 0))
    srv.settimeout(0.2)
    stop = threading.Event()

    def answer(conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            while True:
                head = conn.recv(8)
                if len(head) < 8:
                    return
                length, code = struct.unpack("!ii", head)
                conn.recv(length - 8)
                if code == 80877103:  # SSLRequest: no SSL here
                    conn.sendall(b"N")
                    continue
                fields = b"SFATAL\0VFATAL\0C57P03\0Mthe database system is starting up\0\0"
                conn.sendall(b"E" + struct.pack("!i", len(fields) + 4) + fields)
                return

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            answer(conn)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        yield srv.getsockname()[1]
    finally:
        stop.set()
        t.join(5)
        srv.close()


def test_database_starting_up_keeps_retrying(lab, docker_client):
    host = bridge_host_address(docker_client.networks.get(lab.net).attrs)
    with starting_up_server(host) as port:
        c = lab.erp({"DB_HOST": host, "DB_PORT": str(port), "DB_WAIT_TIMEOUT": "4"}, healthcheck=None)
        assert c.wait(timeout=60)["StatusCode"] == 1
    out = logs(c)
    attempts = re.findall(rf"waiting for PostgreSQL at {re.escape(host)}:{port} \(attempt \d+", out)
    assert len(attempts) >= 2, out
    errors = error_lines(out)
    assert len(errors) == 1 and "not ready after 4s (DB_WAIT_TIMEOUT)" in errors[0], out
    assert "the database system is starting up" in errors[0]
