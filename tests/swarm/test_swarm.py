"""The Swarm stack (swarm/docker-stack.yml via swarm/stack): three Odoo replicas and two cron
runners behind nginx, and the state they share: sessions (PostgreSQL, OCA session_db),
attachments (in the database), the bus (PostgreSQL NOTIFY), cron (SKIP LOCKED). Requests to
one chosen replica run inside its container; requests through the edge go to nginx's
host-mode port."""

from __future__ import annotations

import base64
import hashlib
import os
import secrets

import pytest
import requests

from tests.support.bus import WS_PATH, expected, receive, send_path, subscribe
from tests.support.compose import dev_secret, docker
from tests.support.nginx import ws_connect
from tests.support.rpc import call_kw, login
from tests.support.swarm import SwarmStack
from tests.support.wait import wait_for

pytestmark = [pytest.mark.docker, pytest.mark.odoo]

if os.environ.get("LWTEST_SWARM_DRILLS") != "1":  # ~8 min with the swarm's set-up and removal
    pytest.skip("the Swarm stack tests run in `make swarm-drills`", allow_module_level=True)

DB = "loomworks"


def admin(swarm: SwarmStack) -> requests.Session:
    return login(swarm.url(), DB, dev_secret("admin_password"))


def test_every_service_healthy_dnsrr_and_host_mode_ports(swarm: SwarmStack):
    for name, want in (("postgres", 1), ("redis", 1), ("odoo", 3), ("odoo-cron", 2), ("nginx", 1)):
        assert swarm.replicas_running(name) == (want, want), name
        spec = swarm.inspect_service(name)["Spec"]
        assert spec["EndpointSpec"]["Mode"] == "dnsrr", name
    ports = swarm.inspect_service("nginx")["Spec"]["EndpointSpec"]["Ports"]
    assert {p["PublishMode"] for p in ports} == {"host"}
    r = requests.get(swarm.url("/web/health"), timeout=10)
    assert r.status_code == 200 and r.json()["status"] == "pass", r.text
    # web replicas run no cron and never migrate; the cron service serves no HTTP
    for c in swarm.containers("odoo"):
        conf = docker("exec", c, "cat", "/dev/shm/odoo.conf").stdout
        assert "max_cron_threads = 0" in conf and "session_db" in conf
    assert "migration: disabled (AUTO_MIGRATE=false)" in swarm.logs("odoo", tail=2000)
    cron = swarm.containers("odoo-cron")[0]
    no_http = docker("exec", cron, "curl", "-s", "-m", "3", "http://127.0.0.1:8069/", check=False)
    assert no_http.returncode != 0


def test_secrets_are_swarm_secrets_with_versioned_names(swarm: SwarmStack):
    names = docker("secret", "ls", "--filter", f"label=com.docker.stack.namespace={swarm.name}",
                   "--format", "{{.Name}}").stdout.split()
    assert len(names) == 5, names
    for n in names:
        base, _, version = n.rpartition("_")
        assert base.startswith(swarm.name) and len(version) == 12, n
    env = swarm.inspect_service("odoo")["Spec"]["TaskTemplate"]["ContainerSpec"]["Env"]
    assert not [e for e in env if dev_secret("db_password") in e]


def test_login_through_one_replica_valid_on_every_replica_and_after_replacing_them(swarm: SwarmStack, drill):
    http = admin(swarm)
    sid = http.cookies["session_id"]
    before = set(swarm.containers("odoo"))
    assert len(before) == 3
    for c in before:
        info = swarm.replica_rpc(c, sid, "res.users", "read", [2], ["login"])
        assert info[0]["login"] == "admin", c
    docker("service", "update", "--quiet", "--detach=false", "--force", swarm.service("odoo"), timeout=900)
    swarm.wait_converged("odoo")
    after = set(swarm.containers("odoo"))
    assert len(after) == 3 and not after & before, (before, after)
    for c in after:
        info = swarm.replica_rpc(c, sid, "res.users", "read", [2], ["login"])
        assert info[0]["login"] == "admin", c
    # and a session that never existed is refused everywhere (the check can fail)
    status, text = swarm.replica_http(next(iter(after)), "/web/session/get_session_info", cookie="x" * 84,
                                      body={"jsonrpc": "2.0", "method": "call", "params": {}})
    assert status == 200 and "SessionExpiredException" in text, text[:500]
    drill("every Odoo replica replaced (docker service update --force)",
          "a login made before is valid on each of the 3 new replicas (sessions in PostgreSQL)")


def test_attachment_uploaded_through_one_replica_downloads_through_the_others(swarm: SwarmStack):
    sid = admin(swarm).cookies["session_id"]
    first, *others = swarm.containers("odoo")
    payload = secrets.token_bytes(50_000)
    att_id = swarm.replica_rpc(first, sid, "ir.attachment", "create",
                               {"name": "swarm.bin", "datas": base64.b64encode(payload).decode(),
                                "res_model": "res.partner"})
    [att] = swarm.replica_rpc(first, sid, "ir.attachment", "read", [att_id], ["store_fname", "checksum"])
    assert not att["store_fname"], "stored in a replica's filestore, not the database"
    for c in others:
        [got] = swarm.replica_rpc(c, sid, "ir.attachment", "read", [att_id], ["datas"])
        assert base64.b64decode(got["datas"]) == payload, c
        r = docker("exec", c, "bash", "-c", f"curl -sf -H 'Cookie: session_id={sid}' "
                   f"'http://127.0.0.1:8069/web/content/{att_id}?download=true' | sha256sum")
        assert r.stdout.split()[0] == hashlib.sha256(payload).hexdigest(), c


def test_bus_notification_sent_through_each_replica_reaches_one_websocket(swarm: SwarmStack):
    """The websocket (through nginx) lands on one replica; a notification is sent through each
    of the three, so two of them come from a replica the websocket is not on."""
    port = swarm.ports["HTTP_LOCAL_PORT"]
    ws = ws_connect(port, "localhost", WS_PATH)
    try:
        channel = f"lwtest-{secrets.token_hex(8)}"
        subscribe(ws, [channel])
        for c in swarm.containers("odoo"):
            token = secrets.token_hex(8)
            status, _ = swarm.replica_http(c, send_path(channel, token))
            assert status == 200
            got = receive(ws, token, 30)
            assert got["message"] == expected(channel, token), (c, got)
    finally:
        ws.close()


CRON_CODE = """
time.sleep(2)
env['res.partner'].create({'name': 'lwtest-cron %s'})
"""


def test_a_cron_job_runs_exactly_once_per_call_with_two_cron_runners(swarm: SwarmStack):
    assert swarm.replicas_running("odoo-cron") == (2, 2)
    http = admin(swarm)
    tag = secrets.token_hex(5)
    model_id = call_kw(http, swarm.url(), "ir.model", "search", [("model", "=", "res.partner")])[0]
    cron_id = call_kw(http, swarm.url(), "ir.cron", "create", {
        "name": f"lwtest cron {tag}", "model_id": model_id, "state": "code",
        "code": CRON_CODE % tag, "interval_number": 1, "interval_type": "days",
        "nextcall": "2099-01-01 00:00:00", "active": True})
    trigger = call_kw(http, swarm.url(), "ir.actions.server", "create", {
        "name": f"lwtest trigger {tag}", "model_id": model_id, "state": "code",
        "code": f"env['ir.cron'].browse({cron_id})._trigger()"})

    def runs() -> int:
        domain = [("name", "=", f"lwtest-cron {tag}")]
        return call_kw(http, swarm.url(), "res.partner", "search_count", domain)

    for call in range(1, 4):
        call_kw(http, swarm.url(), "ir.actions.server", "run", [trigger])
        wait_for(lambda n=call: runs() >= n, 120, f"cron run {call}", interval=0.5)
        # the job is done (its trigger consumed, no runner holds it): no second run can follow
        wait_for(lambda: call_kw(http, swarm.url(), "ir.cron.trigger", "search_count",
                                 [("cron_id", "=", cron_id)]) == 0, 60, "trigger consumed", interval=0.5)
        assert runs() == call


def test_down_with_purge_after_migration_jobs_leaves_nothing(swarm: SwarmStack):
    """Issue 13: Docker before 24 never removes a replicated job's tasks nor their containers
    (moby/moby#42789): each migration job's exited container stayed, holding the odoo_data
    volume, and `PURGE=1 swarm/stack down` died ("volumes ... still in use") before leaving the
    swarm. `up` ran one migration job, `upgrade` runs another. Last in the module: it removes
    the module's stack (the session leaves the swarm once, and checks it did)."""
    swarm.script("upgrade")
    assert swarm.job_containers() == [], "a migration job's container outlived its job"
    down = swarm.destroy(leave=False)
    assert down.returncode == 0, down.stderr[-3000:]
    assert swarm.leftovers() == {"containers": [], "volumes": []}
