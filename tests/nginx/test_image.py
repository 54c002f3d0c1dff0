"""The loomworks/nginx image as a container (routing is tested on the host: test_proxy): unprivileged
on a read-only root, healthy, resolving Odoo through Docker's DNS per request (so it starts before
Odoo exists), keeping its certificate across restarts, refusing bad settings with one clear line."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.support.containers import Resources, unique, wait_health
from tests.support.net import host_port
from tests.support.nginx import request, served_cert_sha256, unverified_tls
from tests.support.wait import wait_for

pytestmark = pytest.mark.docker

DOMAIN = "loomworks.localhost"
TENANT = f"acme.{DOMAIN}"
PORTS = {"8080/tcp": ("127.0.0.1", None), "8443/tcp": ("127.0.0.1", None), "8069/tcp": ("127.0.0.1", None)}
# A stand-in for Odoo built from the same image: nginx answering with what it received.
UPSTREAM_CONF = r"""
pid /tmp/up.pid; error_log stderr;
events {}
http {
  access_log off;
  client_body_temp_path /tmp/cb; proxy_temp_path /tmp/px; fastcgi_temp_path /tmp/fc;
  uwsgi_temp_path /tmp/uw; scgi_temp_path /tmp/sc;
  server { listen 8069; location / {
    return 200 "http|$http_host|$http_x_forwarded_for|$http_x_forwarded_proto\n"; } }
  server { listen 8072; location / { return 200 "ws|$http_host|$http_upgrade\n"; } }
}
"""


@pytest.fixture
def docker_env(docker_client, nginx_image: str) -> Iterator[Callable]:
    """run(role, **kwargs) -> container on a private network; everything removed afterwards."""
    made = Resources(docker_client)
    network = made.network("nginx")

    def run(role: str, **kwargs):
        return made.container(nginx_image, role=role, network=network, **kwargs)

    yield run
    made.cleanup()


def served_cert(port: int) -> str:
    return served_cert_sha256(port, TENANT)


def test_image_unprivileged_read_only_healthy_and_routes_via_docker_dns(docker_env) -> None:
    odoo_name = unique("odoo")
    edge = docker_env("edge", environment={"ODOO_HOST": odoo_name}, ports=PORTS, read_only=True,
                      tmpfs={"/tmp": "", "/var/cache/nginx": "uid=101,gid=101"})
    https = host_port(edge, "8443/tcp")
    wait_health(edge, "healthy", 60)

    uid_line = edge.exec_run(["bash", "-c", "grep -h '^Uid:' /proc/[0-9]*/status | sort -u"]).output.decode()
    assert uid_line.split() == ["Uid:", "101", "101", "101", "101"], uid_line
    assert edge.exec_run(["nginx", "-t"]).exit_code == 0  # /etc/nginx/nginx.conf -> rendered file

    # Odoo does not exist yet: nginx still started, and answers 502 with its page.
    resp = request(https, TENANT, "/web", context=unverified_tls(), source="127.0.0.1")
    assert resp.status == 502 and b"Odoo is not answering" in resp.body

    docker_env("odoo", name=odoo_name, entrypoint=["bash", "-c", 'printf "%s" "$0" > /tmp/up.conf; '
                                   'exec nginx -c /tmp/up.conf -g "daemon off;"', UPSTREAM_CONF])

    def proxied() -> bool:
        return request(https, TENANT, "/web", context=unverified_tls(), source="127.0.0.1").status == 200

    wait_for(proxied, 40, "nginx to resolve the new Odoo container (resolver valid=10s)")
    body = request(https, TENANT, "/web", context=unverified_tls(), source="127.0.0.1",
                   headers={"X-Forwarded-For": "6.6.6.6"}).body.decode().strip()
    kind, host, xff, proto = body.split("|")
    assert (kind, host, proto) == ("http", f"{TENANT}:{https}", "https") and xff and "6.6.6.6" not in xff
    ws = request(https, TENANT, "/websocket", context=unverified_tls(), source="127.0.0.1",
                 headers={"Upgrade": "websocket", "Connection": "Upgrade"})
    assert ws.body.decode().strip() == f"ws|{TENANT}:{https}|websocket"

    local = host_port(edge, "8069/tcp")
    body = request(local, "localhost", "/web", tls=False, source="127.0.0.1").body.decode()
    assert body.startswith(f"http|localhost:{local}|") and body.strip().endswith("|http")
    redirect = request(host_port(edge, "8080/tcp"), TENANT, "/web", tls=False, source="127.0.0.1")
    assert (redirect.status, redirect.headers["Location"]) == (308, f"https://{TENANT}/web")

    # The static cache works on the read-only root: its files go to the /var/cache/nginx tmpfs.
    for _ in range(2):
        asset = request(https, TENANT, "/web/static/lwtest.js", context=unverified_tls(), source="127.0.0.1")
        assert asset.status == 200 and asset.headers["Cache-Control"] == "max-age=604800"
    def hit_logged() -> bool:
        out = edge.logs().decode()
        return '"GET /web/static/lwtest.js HTTP/1.1" 200' in out and "cs=HIT" in out

    wait_for(hit_logged, 15, "a cache hit in the access log")
    stored = edge.exec_run(["find", "/var/cache/nginx/static", "-type", "f"]).output.decode().split()
    assert len(stored) == 1, stored


def test_image_keeps_its_self_signed_certificate_across_restarts(docker_env) -> None:
    edge = docker_env("edge", ports=PORTS)
    https = host_port(edge, "8443/tcp")
    first = wait_for(lambda: _try(served_cert, https), 30, "TLS on the container")
    edge.restart(timeout=10)
    https = host_port(edge, "8443/tcp")
    assert wait_for(lambda: _try(served_cert, https), 30, "TLS after restart") == first
    assert "reusing self-signed certificate" in edge.logs().decode()


def _try(fn, *args):
    try:
        return fn(*args)
    except OSError:
        return None


@pytest.mark.parametrize(("env", "expected"), [
    ({"ODOO_HTTP_PORT": "http"}, "ODOO_HTTP_PORT must be a non-negative integer"),
    ({"LOOMWORKS_DOMAIN": "bad domain"}, "LOOMWORKS_DOMAIN must be a DNS name"),
    ({"NGINX_STATIC_CACHE_SIZE": "huge"}, "NGINX_STATIC_CACHE_SIZE must be a size such as 64m or 1g"),
])
def test_image_refuses_bad_settings_with_one_clear_line(docker_env, env: dict, expected: str) -> None:
    c = docker_env("bad", environment=env)
    assert c.wait(timeout=30)["StatusCode"] == 1
    errors = [ln for ln in c.logs().decode().splitlines() if "error:" in ln]
    assert len(errors) == 1 and expected in errors[0], errors
