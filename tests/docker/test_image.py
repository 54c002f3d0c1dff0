"""The built image itself: size, user, contents, metadata (no database needed)."""

from __future__ import annotations

import subprocess

import pytest

from tests.support.containers import run_once
from tests.support.images import GPU_DRIVERS, PDF_RENDERER, REPO, build_args_for_host

pytestmark = [pytest.mark.docker, pytest.mark.odoo]


def run(docker_client, image: str, *cmd: str, user=None) -> tuple[int, str]:
    return run_once(docker_client, image, list(cmd), user=user)


def test_size_under_1gb(docker_client, erp_image):
    size = docker_client.images.get(erp_image).attrs["Size"]
    print(f"image size: {size / 1e6:.0f} MB")
    assert size < 1_000_000_000


def test_runs_as_uid_1000(docker_client, erp_image):
    assert docker_client.images.get(erp_image).attrs["Config"]["User"] == "1000:1000"
    rc, out = run(docker_client, erp_image, "bash", "-c",
                  "id -u; id -g; id -un; stat -c '%u %a' /var/lib/odoo /run/odoo")
    assert rc == 0, out
    assert out.split() == ["1000", "1000", "odoo", "1000", "750", "1000", "700"]


def test_no_build_tools_headers_or_caches(docker_client, erp_image):
    script = (
        "for t in gcc cc c++ make pip pip3; do command -v $t && echo FOUND $t; done; "
        "for d in /usr/include/python3.11 /usr/include/postgresql; do test -e $d && echo FOUND $d; done; "
        "ls /var/lib/apt/lists | grep -v -e lock -e partial && echo FOUND apt-lists; "
        "test -e /root/.cache && echo FOUND pip-cache; "
        "ls /var/cache/apt/archives/ | grep -q '[.]deb$' && echo FOUND apt-archives; "
        "ls /run/secrets 2>/dev/null && echo FOUND secrets; "
        "python3 -c 'import sys; print(sys.version_info[:2])'; "
        "/opt/venv/bin/python -c 'import sys; print(sys.prefix)'; true"
    )
    rc, out = run(docker_client, erp_image, "bash", "-c", script, user="root")
    assert rc == 0, out
    assert "FOUND" not in out, out
    assert "(3, 11)" in out and "/opt/venv" in out


def test_no_gpu_drivers(docker_client, erp_image):
    """Qt's libGL pulls Mesa's drivers and LLVM (~160 MB); wkhtmltopdf renders offscreen and never
    loads them: docker/conf/dpkg-slim.cfg keeps them out, on every architecture."""
    rc, out = run(docker_client, erp_image, "bash", "-c", GPU_DRIVERS)
    assert rc != 0 and out.count("No such file") == 3, out


def test_runtime_tools_present(docker_client, erp_image):
    rc, out = run(docker_client, erp_image, "bash", "-c",
                  "wkhtmltopdf --version && psql --version && curl --version | head -1 && "
                  "test -x /usr/bin/tini && command -v odoo && ls /opt/loomworks/addons && "
                  "test ! -e /opt/loomworks/dev-addons")  # the dev image's mail guard
    assert rc == 0, out
    assert "wkhtmltopdf 0.12" in out and "psql (PostgreSQL) 15" in out
    assert "/usr/local/bin/odoo" in out
    assert "loomworks_health" in out  # addons are discovered from addons/, not listed


def test_postgres_client_tools_without_perl(docker_client, erp_image):
    """psql, pg_dump, pg_restore (Odoo's database manager) come without Debian's Perl wrappers."""
    script = (
        "for t in psql pg_dump pg_dumpall pg_restore pg_isready; do $t --version || echo MISSING $t; done; "
        "ldd /usr/local/bin/psql /usr/local/bin/pg_dump /usr/local/bin/pg_restore | grep 'not found'; "
        "dpkg-query -W -f='${Status}\\n' perl perl-modules-5.36 postgresql-client-common 2>&1 | "
        "grep -c 'install ok installed' || true"
    )
    rc, out = run(docker_client, erp_image, "bash", "-c", script)
    assert rc == 0, out
    assert out.count("(PostgreSQL) 15.") == 5 and "MISSING" not in out, out
    assert "not found" not in out, out
    assert out.strip().splitlines()[-1] == "0", out  # none of the Perl packages is installed


def test_gevent_server_imports(docker_client, erp_image):
    """Odoo's websocket process (gevent) needs pkg_resources: pruning must keep it."""
    # Importing odoo with "gevent" in argv is what Odoo's websocket process does first:
    # gevent.monkey.patch_all() loads gevent's plugins through pkg_resources.
    rc, out = run(docker_client, erp_image, "python", "-c",
                  "import sys; sys.argv = ['odoo', 'gevent']; import odoo, gevent.monkey; "
                  "assert gevent.monkey.is_module_patched('socket'); print('ok')")
    assert rc == 0, out
    assert out.strip().endswith("ok")


def test_other_commands_run_as_given(docker_client, erp_image):
    rc, out = run(docker_client, erp_image, "odoo", "--version")
    assert rc == 0 and "Odoo Server 18.0" in out, out
    rc, out = run(docker_client, erp_image, "bash", "-c", "echo hello from $(id -un)")
    assert rc == 0 and "hello from odoo" in out, out
    # run as root on purpose: the entrypoint still drops to odoo
    rc, out = run(docker_client, erp_image, "id", "-un", user="root")
    assert rc == 0 and out.strip() == "odoo", out


def test_healthcheck_and_labels(docker_client, erp_image):
    cfg = docker_client.images.get(erp_image).attrs["Config"]
    hc = cfg["Healthcheck"]
    assert hc["Test"] == ["CMD", "/usr/local/bin/docker-healthcheck.sh"]
    rc, out = run(docker_client, erp_image, "cat", "/usr/local/bin/docker-healthcheck.sh")
    assert rc == 0 and "http://127.0.0.1:8069/web/health" in out and "--max-time 4" in out, out
    assert hc["Interval"] == 10e9 and hc["Timeout"] == 5e9 and hc["Retries"] == 3
    assert hc["StartPeriod"] == 300e9
    labels = cfg["Labels"]
    for key in ("version", "revision", "source", "title", "description"):
        assert labels.get(f"org.opencontainers.image.{key}"), key
    assert cfg["Entrypoint"][:2] == ["/usr/bin/tini", "--"] and "-g" not in cfg["Entrypoint"]
    assert {"8069/tcp", "8072/tcp"} <= set(cfg["ExposedPorts"])


def test_the_four_images_share_one_convention(docker_client, erp_image, postgres_image, nginx_image,
                                               redis_image):
    """Same installed names, shared library and label set in every image of the stack."""
    for image in (erp_image, postgres_image, nginx_image, redis_image):
        cfg = docker_client.images.get(image).attrs["Config"]
        assert cfg["Entrypoint"][-1] == "/usr/local/bin/docker-entrypoint.sh", (image, cfg["Entrypoint"])
        assert cfg["Healthcheck"]["Test"] == ["CMD", "/usr/local/bin/docker-healthcheck.sh"], image
        labels = cfg["Labels"]
        assert labels["org.opencontainers.image.licenses"] == "LGPL-3.0-or-later", image
        assert labels["org.opencontainers.image.title"] == image.split(":")[0], image
        assert labels["org.opencontainers.image.description"], image
        assert labels["org.opencontainers.image.base.name"] == "debian:bookworm-slim", image
        rc, out = run(docker_client, image, "bash", "-c", ". /usr/local/lib/loomworks/common.sh; log ok")
        assert rc == 0 and out.strip() == "bash: ok", (image, out)


def test_history_has_no_secrets(docker_client, erp_image):
    history = " ".join(h.get("CreatedBy", "") for h in docker_client.images.get(erp_image).history())
    assert "BEGIN CERTIFICATE" not in history
    assert "PIP_CERT=/" not in history  # only the builder stage used the CA secret
    assert "admin_passwd" not in history and "PASSWORD=" not in history


def test_odoo_tests_and_languages_trimmed_but_code_complete(docker_client, erp_image):
    rc, out = run(docker_client, erp_image, "bash", "-c",
                  "ls /opt/odoo/addons/account/i18n/ | tr '\\n' ' '; echo; "
                  "test -d /opt/odoo/addons/account/tests && echo HAS-TESTS; "
                  "test -d /opt/odoo/addons/web/static/tests && echo HAS-JS-TESTS; "
                  "test -d /opt/odoo/addons/web/static/src && echo HAS-JS-SOURCES; "
                  "test -d /opt/odoo/odoo/tests && echo HAS-FRAMEWORK; "
                  "ls /opt/odoo/addons | wc -l")
    assert rc == 0, out
    po = out.splitlines()[0].split()
    assert "fr.po" in po and "de.po" in po and "pt_BR.po" in po and "ja.po" not in po
    assert "HAS-TESTS" not in out and "HAS-JS-TESTS" not in out
    assert "HAS-FRAMEWORK" in out and "HAS-JS-SOURCES" in out
    assert int(out.split()[-1]) > 500  # every Odoo addon is still there


def test_root_dockerfile_pointer_builds(erp_image):
    """`docker build .` from the repository root uses docker/Dockerfile (cached layers)."""
    cmd = ["docker", "build", "-q", "-t", "loomworks/erp:rootcheck", *build_args_for_host(),
           "--build-arg", f"PDF_RENDERER={PDF_RENDERER}", "."]
    r = subprocess.run(cmd,
                       cwd=REPO, capture_output=True, text=True, check=False)
    try:
        assert r.returncode == 0, r.stderr[-3000:]
        inspect = ["docker", "image", "inspect", "-f", "{{.Id}}", "loomworks/erp:rootcheck", erp_image]
        ids = subprocess.run(inspect,
                             capture_output=True, text=True, check=True).stdout.split()
        assert ids[0] == ids[1]  # the same production image as the explicit -f/--target build
    finally:
        subprocess.run(["docker", "rmi", "loomworks/erp:rootcheck"], capture_output=True, check=False)


def test_dev_target_adds_debugpy_and_watchdog_only_there(docker_client, erp_image, erp_dev_image):
    probe = "import debugpy, watchdog.observers; print('dev-tools', debugpy.__version__)"
    rc, out = run(docker_client, erp_dev_image, "python", "-c", probe)
    assert rc == 0 and "dev-tools 1.8" in out, out
    rc, out = run(docker_client, erp_image, "python", "-c", probe)
    assert rc != 0 and "No module named 'debugpy'" in out
