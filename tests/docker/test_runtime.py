"""Real containers against a real PostgreSQL container on a user-defined network.

Order matters and is the file order: the first start initialises the database; later
tests restart the server against it, stop the database, and change the test addon.
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time

import pytest
import requests

from tests.support.containers import (
    HEALTH_POLL,
    REPO,
    engine_time,
    logs,
    unhealthy_within,
    wait_health,
    wait_log,
)
from tests.support.net import get_in_background, host_port
from tests.support.rpc import authenticate

pytestmark = [pytest.mark.docker, pytest.mark.odoo]


def test_first_start_initialises_database_and_turns_healthy(seeded, pg):
    c = seeded["container"]
    assert seeded["seen"][0] == "starting" and seeded["seen"][-1] == "healthy", seeded["seen"]
    out = logs(c)
    assert "init: initialising database lwtest with base, loomworks_health, lwtest_slow" in out
    state = pg.psql("SELECT state FROM ir_module_module WHERE name='loomworks_health'", db="lwtest")
    assert state == "installed"
    assert pg.psql("SELECT count(*) FROM ir_module_module WHERE demo", db="lwtest") == "0"
    r = requests.get(f"http://127.0.0.1:{host_port(c, 8069)}/web/health", timeout=10)
    assert r.status_code == 200
    print(f"first start (create + init) to healthy: {seeded['first_start_s']:.0f} s")


def test_admin_password_set_and_secrets_never_exposed(seeded, docker_client):
    c = seeded["container"]
    base = f"http://127.0.0.1:{host_port(c, 8069)}"
    r = authenticate(requests.Session(), base, "lwtest", seeded["admin_password"])
    assert r.get("result", {}).get("uid") == 2, r
    assert "error" in authenticate(requests.Session(), base, "lwtest", "admin")
    secrets_ = [seeded["admin_password"], seeded["master"], seeded["db_password"]]
    out = logs(c)
    top = subprocess.run(["docker", "top", c.id, "-eo", "pid,args"], capture_output=True, text=True,
                         check=True).stdout
    environ = c.exec_run(["bash", "-c", "cat /proc/[0-9]*/environ 2>/dev/null | tr '\\0' '\\n'"],
                         user="root").output.decode(errors="replace")
    inspect = json.dumps(c.attrs)
    assert "odoo" in top and "ODOO_ADMIN_PASSWD_FILE=/run/secrets/master" in environ  # the real thing...
    for s in secrets_:
        assert s not in out, "secret in docker logs"
        assert s not in top, "secret in ps"
        assert s not in environ, "secret in a process environment"
        assert s not in inspect, "secret in docker inspect"
    history = " ".join(h.get("CreatedBy", "") for h in docker_client.images.get(c.image.id).history())
    assert all(s not in history for s in secrets_)
    conf = c.exec_run(["cat", "/run/odoo/odoo.conf"]).output.decode()
    assert seeded["master"] not in conf and "admin_passwd = $pbkdf2-sha512$" in conf


def test_pdf_report_renders_with_wkhtmltopdf(seeded):
    c = seeded["container"]
    script = (
        "pdf, _ = env['ir.actions.report']._render_qweb_pdf('base.report_ir_model_overview', "
        "env['ir.model'].search([('model', '=', 'res.partner')]).ids)\n"
        "open('/tmp/report.pdf', 'wb').write(pdf)\n"
        "print('PDF-BYTES', len(pdf))\n"
    )
    shell = f"printf %s \"{script}\" | odoo shell -d lwtest --no-http --log-level=warn"
    r = c.exec_run(["bash", "-c", shell])
    out = r.output.decode(errors="replace")
    m = re.search(r"PDF-BYTES (\d+)", out)
    assert m and int(m.group(1)) > 1000, out[-3000:]
    head = c.exec_run(["head", "-c", "5", "/tmp/report.pdf"]).output
    assert head == b"%PDF-"


def test_web_client_bundles_build_from_the_trimmed_tree(seeded):
    """The image drops the addons' JS tests (static/tests): the bundles a browser loads
    (web client and website/login pages) still build and serve."""
    c = seeded["container"]
    base = f"http://127.0.0.1:{host_port(c, 8069)}"
    s = requests.Session()
    r = authenticate(s, base, "lwtest", seeded["admin_password"])
    assert r.get("result", {}).get("uid") == 2, r
    pages = {path: s.get(f"{base}{path}", timeout=120) for path in ("/odoo", "/web/login")}
    urls: set[str] = set()
    for path, page in pages.items():
        assert page.status_code == 200, (path, page.status_code)
        urls |= set(re.findall(r"/web/assets/[^\"']+?\.(?:js|css)", page.text))
    assert any("web.assets_web" in u and u.endswith(".js") for u in urls), urls
    assert any("web.assets_web" in u and u.endswith(".css") for u in urls), urls
    for u in sorted(urls):
        r = s.get(f"{base}{u}", timeout=300)
        assert r.status_code == 200 and len(r.content) > 1000, (u, r.status_code, len(r.content))
    out = logs(c)
    assert "did not resolve to anything" not in out and "Could not get content" not in out


def test_database_manager_dump_and_load_use_the_bundled_pg_tools(seeded, pg):
    """`odoo db dump` runs pg_dump and `odoo db load` runs psql (no Perl in the image)."""
    c = seeded["container"]
    conf = "/run/odoo/odoo.conf"
    script = (f"odoo db -c {conf} dump lwtest /tmp/lwtest.zip && "
              f"odoo db -c {conf} load lwtest_copy /tmp/lwtest.zip && echo LOADED")
    try:
        r = c.exec_run(["bash", "-c", script])
        out = r.output.decode(errors="replace")
        assert r.exit_code == 0 and "LOADED" in out, out[-3000:]
        q = "SELECT count(*) FROM ir_module_module WHERE state = 'installed'"
        assert pg.psql(q, db="lwtest_copy") == pg.psql(q, db="lwtest") != "0"
    finally:
        pg.psql("DROP DATABASE IF EXISTS lwtest_copy")
        c.exec_run(["rm", "-rf", "/tmp/lwtest.zip", "/var/lib/odoo/filestore/lwtest_copy"])


def test_database_outage_unhealthy_then_healthy_without_restart(seeded, pg):
    c = seeded["container"]
    c.reload()
    started_at = c.attrs["State"]["StartedAt"]
    # the container's own health check settings bound it, plus one poll of wait_health
    bound = unhealthy_within(c.attrs["Config"]["Healthcheck"]) + HEALTH_POLL
    pg.stop()
    t0 = time.monotonic()
    try:
        wait_health(c, "unhealthy", bound + 30)
        took = time.monotonic() - t0
        assert took <= bound, (took, bound)
        # the health check (docker-healthcheck.sh) says why, in one line
        probe = c.exec_run(["docker-healthcheck.sh"])
        assert probe.exit_code == 1, probe.output
        assert probe.output.decode().startswith("healthcheck: error: GET http://127.0.0.1:8069/web/health: ")
    finally:
        pg.start()
    wait_health(c, "healthy", 60)
    c.reload()
    assert c.attrs["State"]["StartedAt"] == started_at and c.attrs["RestartCount"] == 0
    assert c.exec_run(["docker-healthcheck.sh"]).exit_code == 0


def test_graceful_shutdown_finishes_in_flight_request(seeded, lab, pg, addon_dir):
    seeded["container"].stop(timeout=40)  # a fresh server for this test (same database)
    c = lab.erp({"DB_NAME": "lwtest", "GRACEFUL_TIMEOUT": "30"}, addon=addon_dir)
    wait_health(c, "healthy", 180)
    port = host_port(c, 8069)
    t, result = get_in_background(f"http://127.0.0.1:{port}/lwtest/sleep?seconds=10")
    wait_log(c, "lwtest: request started", 30)
    late: dict = {}

    def late_request() -> None:  # sent once the server is stopping: must not be served
        wait_log(c, "Stopping gracefully", 20)
        try:
            r = requests.get(f"http://127.0.0.1:{port}/lwtest/sleep?seconds=0", timeout=40)
            late.update(status=r.status_code, body=r.text)
        except requests.RequestException as exc:
            late.update(error=repr(exc))

    t2 = threading.Thread(target=late_request)
    t2.start()
    stop_sent = time.monotonic()
    c.stop(timeout=45)  # SIGTERM; SIGKILL only after 45 s
    stopped = time.monotonic()
    t.join(60)
    t2.join(60)
    assert late and late.get("body") != "slept 0", late
    c.reload()
    out = logs(c)
    assert result.get("status") == 200 and result["body"] == "slept 10", (result, out[-3000:])
    assert c.attrs["State"]["ExitCode"] == 0, out[-3000:]
    # the master exits once its workers are done, before the grace it was given runs out
    grace = container_env(c)["GRACEFUL_TIMEOUT"]
    assert stopped - stop_sent < int(grace), (stopped - stop_sent, grace)
    # the in-flight request finished during the graceful stop (a complete 200 came back, above)
    assert "Stopping gracefully" in out
    assert out.index("lwtest: request done") > out.index("Stopping gracefully"), out[-3000:]


def test_graceful_timeout_bounds_the_wait(seeded, lab, pg, addon_dir):
    """A request longer than GRACEFUL_TIMEOUT is cut at the grace, and the exit is still clean."""
    c = lab.erp({"DB_NAME": "lwtest", "GRACEFUL_TIMEOUT": "3"}, addon=addon_dir)
    wait_health(c, "healthy", 180)
    t, outcome = get_in_background(f"http://127.0.0.1:{host_port(c, 8069)}/lwtest/sleep?seconds=30")
    wait_log(c, "lwtest: request started", 30)
    t0 = time.monotonic()
    c.stop(timeout=45)
    took = time.monotonic() - t0
    c.reload()
    # exit 0: neither limit_time_real (120 s) nor the 45 s stop timeout (SIGKILL: 137) ended it
    assert c.attrs["State"]["ExitCode"] == 0
    # the workers were given GRACEFUL_TIMEOUT, and the stop did not wait for the 30 s request
    grace = int(container_env(c)["GRACEFUL_TIMEOUT"])
    assert grace <= took < 30, (took, grace)
    t.join(10)
    # the 30 s request did not get to finish: its connection was cut
    assert isinstance(outcome.get("error"), requests.ConnectionError), outcome


def container_env(c) -> dict[str, str]:
    return dict(e.split("=", 1) for e in c.attrs["Config"]["Env"])


def pgconnect_timeout() -> int:
    """libpq's connect timeout for the entrypoint's login attempts (docker/entrypoint.sh)."""
    return int(re.search(r"PGCONNECT_TIMEOUT=(\d+)", (REPO / "docker" / "entrypoint.sh").read_text())[1])


def _start_and_wait(lab, addon_dir):
    c = lab.erp({"DB_NAME": "lwtest"}, addon=addon_dir)
    wait_health(c, "healthy", 300)
    out = logs(c)
    c.stop(timeout=40)
    return out


def test_migration_updates_changed_addon_once(lab, pg, addon_dir):
    out = _start_and_wait(lab, addon_dir)
    assert "migration: up to date (lwtest)" in out
    manifest = addon_dir / "__manifest__.py"
    manifest.write_text(manifest.read_text().replace("18.0.1.0.0", "18.0.1.1.0"))
    out = _start_and_wait(lab, addon_dir)
    assert re.search(r"migration: updated lwtest_slow in \d+ s \(lwtest\)", out), out[-4000:]
    version = pg.psql("SELECT latest_version FROM ir_module_module WHERE name='lwtest_slow'", db="lwtest")
    assert version == "18.0.1.1.0"
    out = _start_and_wait(lab, addon_dir)
    assert "migration: up to date (lwtest)" in out and "migration: updat" not in out.replace(
        "migration: up to date", "")


def test_auto_migrate_false_disables_it(lab, pg, addon_dir):
    (addon_dir / "controllers.py").write_text((addon_dir / "controllers.py").read_text() + "\n# changed\n")
    c = lab.erp({"DB_NAME": "lwtest", "AUTO_MIGRATE": "false"}, addon=addon_dir)
    wait_health(c, "healthy", 180)
    c.stop(timeout=40)
    out = logs(c)
    assert "migration: disabled (AUTO_MIGRATE=false)" in out and "migration: updat" not in out


def test_concurrent_replicas_migrate_one_at_a_time(lab, pg, addon_dir):
    """Two replicas start on a changed addon: one updates, the other waits and finds it up to date."""
    (addon_dir / "controllers.py").write_text((addon_dir / "controllers.py").read_text() + "\n# again\n")
    a = lab.erp({"DB_NAME": "lwtest"}, addon=addon_dir)
    b = lab.erp({"DB_NAME": "lwtest"}, addon=addon_dir)
    wait_health(a, "healthy", 300)
    wait_health(b, "healthy", 300)
    outs = [logs(a), logs(b)]
    for c in (a, b):
        c.stop(timeout=40)
    updated = [o for o in outs if "migration: updated lwtest_slow" in o]
    assert len(updated) == 1, outs
    other = outs[1 - outs.index(updated[0])]
    assert "migration: up to date (lwtest)" in other


def test_failed_migration_exits_nonzero_and_database_stays(lab, pg, addon_dir):
    manifest = addon_dir / "__manifest__.py"
    good = manifest.read_text()
    before = pg.psql("SELECT latest_version FROM ir_module_module WHERE name='lwtest_slow'", db="lwtest")
    broken = good.replace('"installable": True,', '"installable": True,\n    "data": ["missing.xml"],')
    manifest.write_text(broken.replace(before, "18.0.9.9.9"))
    try:
        c = lab.erp({"DB_NAME": "lwtest"}, addon=addon_dir)
        assert c.wait(timeout=300)["StatusCode"] == 1
        out = logs(c)
        errors = [line for line in out.splitlines() if "loomworks-db: error:" in line]
        assert len(errors) == 1 and "migration: failed for lwtest" in errors[0], out[-4000:]
        assert "entrypoint: error:" not in out
        after = pg.psql("SELECT latest_version FROM ir_module_module WHERE name='lwtest_slow'", db="lwtest")
        assert after == before  # Odoo's transaction rolled back
    finally:
        manifest.write_text(good)
    out = _start_and_wait(lab, addon_dir)  # the old content serves again, nothing to do
    assert "migration: up to date (lwtest)" in out


def test_start_before_database_waits_with_backoff_then_serves(lab, pg):
    pg.stop()
    try:
        c = lab.erp({"DB_NAME": "lwtest"})
        out = wait_log(c, "(attempt 4,", 60)
    finally:
        pg.start()
    wait_health(c, "healthy", 180)
    out = logs(c)
    attempt = r"waiting for PostgreSQL at \S+ \(attempt \d+, \d+s of 60s, retry in ([\d.]+)s\)"
    delays = [float(d) for d in re.findall(attempt, out)]
    assert len(delays) >= 4 and delays[:4] == [0.25, 0.5, 1.0, 2.0], out[:3000]
    assert "accepts logins" in out
    c.stop(timeout=40)


def test_database_never_comes_exits_with_clear_error(lab, pg):
    budget = 5
    env = {"DB_HOST": "lwtest-nowhere", "DB_PORT": "5433", "DB_WAIT_TIMEOUT": str(budget)}
    c = lab.erp(env, db=False, healthcheck=None)
    rc = c.wait(timeout=60)["StatusCode"]
    out = logs(c)
    assert rc == 1
    # The wait (the engine's log timestamps, from its first line to the exit) keeps to the budget:
    # each sleep is clamped to the time left, measured in whole seconds (bash's SECONDS: up to 1 s
    # more), and the attempt after the last sleep is bounded by libpq's connect timeout.
    stamped = c.logs(timestamps=True).decode(errors="replace").splitlines()
    began = next(ln for ln in stamped if "connecting to PostgreSQL at" in ln).split(" ", 1)[0]
    c.reload()
    waited = engine_time(c.attrs["State"]["FinishedAt"]) - engine_time(began)
    assert waited <= budget + 1 + pgconnect_timeout(), waited
    retries = [int(d) for d in re.findall(rf"\(attempt \d+, (\d+)s of {budget}s, retry in [\d.]+s\)", out)]
    assert retries and all(spent < budget for spent in retries), out
    errors = [line for line in out.splitlines() if "error:" in line]
    assert len(errors) == 1, out
    assert "PostgreSQL at lwtest-nowhere:5433 not ready after 5s (DB_WAIT_TIMEOUT)" in errors[0]
    assert "lwtest-nowhere" in errors[0].split("):", 1)[1]  # the last libpq error names the host


def test_db_wait_timeout_defaults_to_60s(lab):
    c = lab.erp({"DB_HOST": "lwtest-nowhere"}, db=False, healthcheck=None)
    out = wait_log(c, "waiting for PostgreSQL", 30)
    assert "budget 60s" in out and "s of 60s" in out
    c.stop(timeout=5)


def test_read_only_root_filesystem(lab, pg):
    """As Compose runs it: read-only root, a volume on /var/lib/odoo, tmpfs for /run/odoo and /tmp."""
    tmpfs = {"/run/odoo": "uid=1000,gid=1000,mode=0700", "/tmp": "mode=1777"}
    c = lab.erp({"DB_NAME": "lwtest"}, read_only=True, tmpfs=tmpfs)
    assert c.wait(timeout=60)["StatusCode"] == 1  # without a data volume: a clear error
    assert "/var/lib/odoo is on a read-only filesystem: mount a volume at /var/lib/odoo" in logs(c)
    c = lab.erp({"DB_NAME": "lwtest"}, read_only=True, tmpfs=tmpfs,
                volumes={lab.volume("erp-data"): {"bind": "/var/lib/odoo", "mode": "rw"}})
    wait_health(c, "healthy", 180)
    r = requests.get(f"http://127.0.0.1:{host_port(c, 8069)}/web/login", timeout=30)
    assert r.status_code == 200
    c.stop(timeout=40)
    c.reload()
    assert c.attrs["State"]["ExitCode"] == 0


def test_existing_empty_database_is_initialised_and_needs_admin_password(lab, pg):
    pg.psql(f'CREATE DATABASE lwempty OWNER "{pg.user}"')
    c = lab.erp({"DB_NAME": "lwempty"}, healthcheck=None)
    assert c.wait(timeout=120)["StatusCode"] == 1
    needed = "error: ADMIN_PASSWORD (or ADMIN_PASSWORD_FILE) is required to initialise database lwempty"
    assert needed in logs(c)
    assert pg.psql("SELECT to_regclass('ir_module_module') IS NULL", db="lwempty") == "t"  # untouched
    c = lab.erp({"DB_NAME": "lwempty", "ADMIN_PASSWORD": "x-" + c.name[-8:]})
    wait_health(c, "healthy", 300)
    assert "init: database lwempty initialised" in logs(c)
    assert pg.psql("SELECT state FROM ir_module_module WHERE name='base'", db="lwempty") == "installed"
    c.stop(timeout=40)
