"""The nginx edge's static cache (snippets/odoo.conf, assets location): the project's configuration
on the host's nginx in front of the stand-in upstream, which records what it receives (an answer
from the cache is one it never saw); the access log's ``cs=`` ($upstream_cache_status) says more."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from email.utils import parsedate_to_datetime

import pytest

from tests.support.nginx import NginxRun, Response, request
from tests.support.upstreams import HttpUpstream
from tests.support.wait import wait_for

pytestmark = pytest.mark.integration

TENANT = "acme.loomworks.app"
OTHER = "bigco.loomworks.app"
WEEK, YEAR = 604800, 31536000


def unique(prefix: str) -> str:
    """A path of its own, so the module's shared nginx and upstream keep tests apart."""
    return f"{prefix}{uuid.uuid4().hex[:12]}.js"


def get(run: NginxRun, path: str, host: str = TENANT, **kw) -> Response:
    return request(run.https_port, host, path, context=run.tls_context(), **kw)


def fetches(up: HttpUpstream, path: str) -> int:
    return sum(1 for s in up.seen if s["path"] == path)


def assert_browser_caching(resp: Response, max_age: int) -> None:
    assert resp.headers["Cache-Control"] == f"max-age={max_age}"
    expires, date = (parsedate_to_datetime(resp.headers[h]) for h in ("Expires", "Date"))
    assert abs((expires - date).total_seconds() - max_age) <= 1, (date, expires)
    # "expires" and the cache did not drop the server-level headers
    assert (resp.headers["X-Content-Type-Options"], resp.headers["Strict-Transport-Security"]) == (
        "nosniff", "max-age=63072000")


@pytest.fixture
def own_upstream() -> Iterator[HttpUpstream]:
    """An upstream a test may stop."""
    up = HttpUpstream()
    yield up
    up.close()


# --- what is cached ------------------------------------------------------------------


@pytest.mark.parametrize(("prefix", "max_age"), [
    ("/web/assets/1a2b3c4/web.assets_web.min-", YEAR),
    ("/web/static/src/", WEEK),
    ("/sale/static/src/", WEEK),
])
def test_second_request_is_served_from_the_cache_with_the_same_headers(
        nginx: NginxRun, http_upstream: HttpUpstream, prefix: str, max_age: int) -> None:
    path = unique(prefix)
    first = get(nginx, path)
    assert first.status == 200 and fetches(http_upstream, path) == 1
    second = get(nginx, path)
    assert second.status == 200
    assert fetches(http_upstream, path) == 1  # the upstream never saw the second request
    assert second.body == first.body and nginx.cache_statuses(path, 2) == ["MISS", "HIT"]
    for resp in (first, second):
        assert_browser_caching(resp, max_age)


def test_cache_files_live_under_the_writable_cache_dir(nginx: NginxRun, http_upstream: HttpUpstream) -> None:
    path = unique("/web/static/lib/")
    assert get(nginx, path).status == 200
    static = nginx.root / "cache" / "static"

    def stored() -> list:
        return [f for f in static.rglob("*") if f.is_file() and path.encode() in f.read_bytes()]

    assert len(wait_for(stored, 10, "the cache file of the asset")) == 1


def test_conditional_request_gets_304_from_the_cache_with_caching_headers(
        nginx: NginxRun, http_upstream: HttpUpstream) -> None:
    path = unique("/web/static/src/") + "?etag=v1"
    assert get(nginx, path).headers["ETag"] == '"v1"'
    resp = get(nginx, path, headers={"If-None-Match": '"v1"'})
    assert resp.status == 304 and fetches(http_upstream, path) == 1
    assert resp.headers["Cache-Control"] == f"max-age={WEEK}"


def test_cache_key_includes_scheme_and_host(nginx: NginxRun, http_upstream: HttpUpstream) -> None:
    path = unique("/web/assets/9f8e7d6/web.assets_frontend.min-")
    bodies = {}
    for host in (TENANT, OTHER, TENANT, OTHER):
        resp = get(nginx, path, host)
        assert resp.status == 200
        # each tenant gets the answer Odoo gave for its own Host, never the other's
        assert resp.json()["headers"]["host"] == f"{host}:{nginx.https_port}"
        bodies.setdefault(host, resp.body)
        assert resp.body == bodies[host]
    assert fetches(http_upstream, path) == 2  # one per tenant, then hits
    # the plain local listener (http) is an entry of its own
    local = request(nginx.local_port, TENANT, path, tls=False)
    assert local.json()["headers"]["x-forwarded-proto"] == "http" and fetches(http_upstream, path) == 3


# --- what is not cached --------------------------------------------------------------


@pytest.mark.parametrize(("path", "status"), [
    ("/web/assets/debug/web.assets_web-{u}.js", 200),  # debug bundles: Odoo rebuilds them
    ("/web/static/src/{u}.js?cookie=1", 200),          # a Set-Cookie answer
    ("/web/static/src/{u}.js?status=404", 404),
    ("/web/static/src/{u}.js?status=500", 500),
    ("/web/assets/1a2b3c4/{u}.min.js?redirect=1", 302),
    ("/web/static/src/{u}.js?cc=no-store", 200),       # Odoo's "do not store" is obeyed
    ("/web/static/src/{u}.js?cc=private,+max-age%3D60", 200),
    ("/web/static/src/{u}.js?cc=no-cache,+max-age%3D0", 200),  # what Odoo sends in debug=assets
    ("/web/login?{u}", 200),                          # not an asset
    ("/web/image/{u}", 200),
])
def test_response_is_not_cached(nginx: NginxRun, http_upstream: HttpUpstream, path: str, status: int) -> None:
    path = path.format(u=uuid.uuid4().hex[:12])
    for n in (1, 2):
        resp = get(nginx, path)
        assert resp.status == status and fetches(http_upstream, path) == n
        if "cookie=1" in path:
            assert resp.headers["Set-Cookie"].startswith("session_id=lwtest")
        if status != 200 or "/debug/" in path or not re.search(r"/static/|/assets/", path):
            assert "Cache-Control" not in resp.headers and "Expires" not in resp.headers
    statuses = nginx.cache_statuses(path, 2)
    assert "HIT" not in statuses
    if "/debug/" in path:
        assert statuses == ["BYPASS", "BYPASS"]  # not even looked up


def test_head_and_get_share_the_entry_but_post_is_not_cached(nginx: NginxRun,
                                                              http_upstream: HttpUpstream) -> None:
    path = unique("/web/static/src/")
    assert get(nginx, path, method="HEAD").status == 200 and fetches(http_upstream, path) == 1
    assert get(nginx, path).status == 200
    assert fetches(http_upstream, path) == 1  # HEAD was sent upstream as GET and stored
    assert get(nginx, path, method="POST", body=b"x").status == 200
    assert get(nginx, path, method="POST", body=b"x").status == 200 and fetches(http_upstream, path) == 3


def test_hard_reload_goes_to_odoo_and_refreshes_the_entry(nginx: NginxRun,
                                                          http_upstream: HttpUpstream) -> None:
    path = unique("/web/static/src/")
    first = get(nginx, path)
    reload = get(nginx, path, headers={"Cache-Control": "no-cache"})
    assert fetches(http_upstream, path) == 2 and reload.json()["headers"]["cache-control"] == "no-cache"
    after = get(nginx, path)
    assert fetches(http_upstream, path) == 2
    assert after.body == reload.body != first.body  # the entry now holds the reloaded answer
    assert_browser_caching(reload, WEEK)


# --- bursts, outages, revalidation -----------------------------------------------------


def test_a_burst_for_a_cold_asset_reaches_odoo_once(nginx: NginxRun, http_upstream: HttpUpstream) -> None:
    path = unique("/web/assets/5e6f7a8/web.assets_backend.min-") + "?delay=1"
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda _: get(nginx, path), range(8)))
    assert [r.status for r in answers] == [200] * 8 and len({r.body for r in answers}) == 1
    assert fetches(http_upstream, path) == 1 and nginx.cache_statuses(path, 8).count("MISS") == 1


def test_stale_copy_is_served_while_odoo_is_down(make_nginx, own_upstream: HttpUpstream) -> None:
    run = make_nginx(ODOO_HTTP_PORT=str(own_upstream.port), NGINX_STATIC_CACHE_VALID="1s").start()
    path = unique("/web/static/src/")
    first = get(run, path)
    assert first.status == 200
    own_upstream.close()  # Odoo goes away: connections are refused

    assert get(run, "/web/login").status == 502  # the upstream is really down
    assert get(run, unique("/web/static/src/")).status == 502  # never cached: nothing to serve
    served: list[str] = []

    def stale() -> bool:
        resp = get(run, path)
        assert resp.status == 200 and resp.body == first.body
        assert_browser_caching(resp, WEEK)
        served.append(resp.headers["Date"])
        return run.cache_statuses(path, len(served) + 1)[-1] == "STALE"

    wait_for(stale, 15, "the entry to expire and be served stale")


def test_expired_entry_is_revalidated_with_a_conditional_request(make_nginx,
                                                                 own_upstream: HttpUpstream) -> None:
    run = make_nginx(ODOO_HTTP_PORT=str(own_upstream.port), NGINX_STATIC_CACHE_VALID="3s").start()
    path = unique("/web/static/src/") + "?etag=v7"
    first = get(run, path)
    count = 1

    def revalidated() -> bool:
        nonlocal count
        resp = get(run, path)
        count += 1
        assert resp.status == 200 and resp.body == first.body
        assert_browser_caching(resp, WEEK)
        return run.cache_statuses(path, count)[-1] == "REVALIDATED"

    wait_for(revalidated, 15, "the entry to expire and be revalidated")
    conditional = [s for s in own_upstream.seen if s["path"] == path][-1]
    assert conditional["headers"]["if-none-match"] == '"v7"'
    # the 304 made the entry fresh again: the next request is a plain hit
    assert get(run, path).body == first.body and run.cache_statuses(path, count + 1)[-1] == "HIT"
