"""Fault drills on one running stack (with the slow-route test addon): the database stopped, killed
and partitioned away; Odoo killed mid-request, or stopped with every worker busy; the WAL archive
unwritable. Each asserts recovery without a manual step and that nothing committed is lost.
Time to recover runs from the end of the fault (container started again, network reconnected,
archive writable) to Odoo healthy (under write load: its first acknowledged write after)."""

from __future__ import annotations

import base64
import os
import secrets
import signal
import threading
import time
from dataclasses import dataclass, field

import pytest
import requests

from tests.support.compose import TEST_ADDON, Stack, docker
from tests.support.containers import HEALTH_POLL, engine_time, unhealthy_within
from tests.support.net import get_in_background
from tests.support.rpc import call_kw, jsonrpc
from tests.support.wait import wait_for

pytestmark = [pytest.mark.docker, pytest.mark.odoo]

WORKERS = 4
# nginx's own page for 502/503/504 (nginx/html/50x.html)
NGINX_50X = "Odoo is not answering right now"


@pytest.fixture(scope="module")
def stack(stacks) -> Stack:
    return stacks(files=("docker-compose.yml", TEST_ADDON), env={"WORKERS": str(WORKERS)})


@pytest.fixture(scope="module")
def http(stack: Stack) -> requests.Session:
    return stack.login()


def unhealthy_bound(st: Stack) -> float:
    """Worst case for odoo to be seen unhealthy: Docker's bound from odoo's own health check
    settings (tests.support.containers.unhealthy_within), plus one poll of wait_odoo."""
    return unhealthy_within(st.inspect("odoo")["Config"]["Healthcheck"]) + HEALTH_POLL


def create_records(st: Stack, http: requests.Session) -> str:
    tag = f"drill-{secrets.token_hex(5)}"
    ids = call_kw(http, st.url(), "res.partner", "create", [{"name": f"{tag} {i}"} for i in range(20)])
    assert len(ids) == 20
    return tag


def count_records(st: Stack, http: requests.Session, tag: str) -> int:
    return call_kw(http, st.url(), "res.partner", "search_count", [("name", "like", f"{tag} %")])


def wait_odoo(st: Stack, status: str, timeout: float) -> float:
    """Seconds until odoo's Docker health is ``status`` (the container must stay up)."""
    start = time.monotonic()

    def check() -> bool:
        h = st.health("odoo")
        assert h != "exited", st.logs("odoo")
        return h == status

    wait_for(check, timeout, f"odoo {status}", interval=HEALTH_POLL)
    return time.monotonic() - start


def odoo_started_at(st: Stack) -> tuple[str, int]:
    info = st.inspect("odoo")
    return info["State"]["StartedAt"], info["RestartCount"]


def kill_until_restarted(st: Stack, service: str, timeout: float = 60) -> float:
    """SIGKILL the service's init process from the host (a crash); once its restart policy has
    started it again, the engine's time of that start (State.StartedAt, epoch s): the fault's end."""
    info = st.inspect(service)
    killed, restarts = time.time(), info["RestartCount"]
    os.kill(info["State"]["Pid"], signal.SIGKILL)

    def restarted() -> float | None:
        info = st.inspect(service)
        started = engine_time(info["State"]["StartedAt"])
        ok = info["RestartCount"] > restarts and info["State"]["Running"] and started > killed
        return started if ok else None

    return wait_for(restarted, timeout, f"{service} restarted by its restart policy", interval=0.2)


@dataclass
class ReadinessProbe:
    """Polls /web/health through nginx in a thread; remembers every status seen, and how many
    503s carried Odoo's own readiness answer (``{"status": "fail", ...}``)."""

    st: Stack
    seen: list[int] = field(default_factory=list)
    odoo_fail: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                r = requests.get(self.st.url("/web/health"), timeout=5)
                self.seen.append(r.status_code)
                if r.status_code == 503 and r.headers.get("Content-Type", "").startswith("application/json"):
                    self.odoo_fail += r.json().get("status") == "fail"
            except (requests.RequestException, ValueError):
                self.seen.append(0)
            self._stop.wait(0.2)

    def stop(self) -> list[int]:
        self._stop.set()
        self._thread.join(10)
        return self.seen


def assert_archive_verified(stack: Stack) -> None:
    """The project's verifier, inside the postgres container: every segment there, no gap."""
    docker("exec", "-u", "postgres", stack.container_id("postgres"), "pg-verify-archive")


def outage_then_recovery(stack: Stack, http, drill, name: str, fault, heal) -> None:
    """``fault()`` cuts Odoo from its database: Odoo must turn unhealthy within the bound;
    after ``heal()`` it must recover on its own (no restart) with every record."""
    tag = create_records(stack, http)
    before = odoo_started_at(stack)
    bound = unhealthy_bound(stack)
    fault()
    try:
        took = wait_odoo(stack, "unhealthy", bound + 5)
        print(f"\nodoo unhealthy {took:.1f}s after: {name} (bound {bound:.1f}s)")
        assert took <= bound
    finally:
        heal()
    recover = wait_odoo(stack, "healthy", 180)  # from the end of the fault: heal() returned
    assert odoo_started_at(stack) == before, "odoo was restarted: it must recover on its own"
    assert count_records(stack, http, tag) == 20
    drill(name, f"unhealthy in {took:.0f} s (bound {bound:.1f} s, from the health check settings); "
          "recovered on its own, no restart; 20/20 records", recover)


def test_database_stopped_unhealthy_in_bound_then_recovers_with_all_records(stack: Stack, http, drill):
    pg = stack.container_id("postgres")
    outage_then_recovery(stack, http, drill, "postgres stopped (docker stop)",
                         fault=lambda: docker("stop", "-t", "60", pg), heal=lambda: docker("start", pg))


def write_wal_to_replay(st: Stack) -> None:
    """A crash's usual state: a few hundred MB of WAL since the last checkpoint, which the
    restarted server replays before it accepts connections ("the database system is starting
    up"). Without it the killed server is back within the readiness probe's connect timeout
    and the outage can pass unseen."""
    st.psql("BEGIN; CREATE TABLE lwtest_replay AS SELECT g, repeat('x', 200) AS pad "
            "FROM generate_series(1, 1000000) g; DROP TABLE lwtest_replay; COMMIT")  # ~290 MB of WAL


def test_database_killed_readiness_fails_then_recovers_with_all_records(stack: Stack, http, drill):
    tag = create_records(stack, http)
    before = odoo_started_at(stack)
    probe = ReadinessProbe(stack)
    try:
        wait_for(lambda: 200 in probe.seen, 30, "a passing readiness probe", interval=0.2)
        write_wal_to_replay(stack)
        restarted = kill_until_restarted(stack, "postgres")
        stack.wait_service_healthy("postgres", timeout=180)
        n = len(probe.seen)
        wait_for(lambda: 200 in probe.seen[n:], 120, "odoo readiness back to 200", interval=0.2)
        wait_odoo(stack, "healthy", 180)
        recover = time.time() - restarted
    finally:
        seen = probe.stop()
    print("\n" + "".join(ln for ln in stack.logs("postgres", tail=400).splitlines(True) if "redo" in ln))
    assert probe.odoo_fail, f"Odoo's readiness never answered 503 fail: {sorted(set(seen))}"
    assert odoo_started_at(stack) == before, "odoo was restarted: it must recover on its own"
    assert count_records(stack, http, tag) == 20
    drill("postgres killed (kill -9)",
          "restarted by its policy; Odoo's readiness answered 503 during the outage; Odoo recovered on its "
          "own, no restart; 20/20 records", recover)


def test_database_partitioned_from_odoo_then_reconnected(stack: Stack, http, drill):
    pg = stack.container_id("postgres")
    net = f"{stack.project}_default"
    endpoint = stack.inspect("postgres")["NetworkSettings"]["Networks"][net]
    aliases = [a for a in endpoint.get("Aliases") or [] if a != pg[:12]]
    outage_then_recovery(
        stack, http, drill, "postgres partitioned from Odoo (network disconnect)",
        fault=lambda: docker("network", "disconnect", net, pg),
        heal=lambda: docker("network", "connect", *[a for al in aliases for a in ("--alias", al)], net, pg),
    )


def start_slow_requests(st: Stack, n: int, seconds: str) -> list[tuple[threading.Thread, dict]]:
    """``n`` slow GETs in the background (the kit's get_in_background), once Odoo runs them all."""
    started = [get_in_background(st.url(f"/lwtest/sleep?seconds={seconds}"), 120) for _ in range(n)]
    wait_for(lambda: st.logs("odoo", tail=300).count(f"sleeping {seconds} s") >= n, 60,
             f"{n} slow requests running in Odoo", interval=0.3)
    return started


def test_odoo_killed_mid_request_restarts_with_filestore_and_session(stack: Stack, drill):
    http = stack.login()
    cookie = http.cookies["session_id"]
    payload = secrets.token_bytes(4096)
    datas = base64.b64encode(payload).decode()
    att_id = call_kw(http, stack.url(), "ir.attachment", "create",
                     {"name": "drill.bin", "datas": datas, "res_model": "res.partner"})
    [att] = call_kw(http, stack.url(), "ir.attachment", "read", [att_id], ["store_fname"])
    [(thread, result)] = start_slow_requests(stack, 1, "20.25")
    restarted = kill_until_restarted(stack, "odoo")  # tini: the whole container dies at once
    wait_odoo(stack, "healthy", 300)
    recover = time.time() - restarted
    thread.join(60)
    # The request in flight at the crash gets nginx's 502 page (documented): it was never answered.
    assert result.get("status") == 502 and NGINX_50X in result["body"], result
    again = requests.Session()
    again.cookies.set("session_id", cookie)
    session = jsonrpc(again, stack.url("/web/session/get_session_info"), {})
    assert session["uid"], "session lost"
    [att] = call_kw(again, stack.url(), "ir.attachment", "read", [att_id], ["datas", "store_fname"])
    assert base64.b64decode(att["datas"]) == payload
    filestore = f"/var/lib/odoo/filestore/loomworks/{att['store_fname']}"
    assert stack.exec("odoo", "test", "-s", filestore, check=False).returncode == 0
    drill("Odoo killed mid-request (kill -9)",
          "restarted by its policy; session and filestore attachment intact; the killed request got "
          "nginx's 502 page", recover)


def test_docker_stop_lets_every_in_flight_request_finish(stack: Stack, drill):
    cid = stack.container_id("odoo")
    started = start_slow_requests(stack, WORKERS, "6.125")
    stopped = time.monotonic()
    docker("stop", cid)  # the compose stop_grace_period applies (longer than GRACEFUL_TIMEOUT)
    stop_took = time.monotonic() - stopped
    for t, _ in started:
        t.join(60)
    results = [r for _, r in started]
    assert [r.get("status") for r in results] == [200] * WORKERS, repr(results)[:2000]
    assert all(r["body"] == "slept 6.125" for r in results), results
    code = stack.inspect("odoo")["State"]["ExitCode"]
    assert code != 137, f"odoo was SIGKILLed after the grace period:\n{stack.logs('odoo')}"
    assert code == 0, f"odoo exited {code}:\n{stack.logs('odoo')}"
    docker("start", cid)
    recover = wait_odoo(stack, "healthy", 300)  # from `docker start` returning
    drill(f"docker stop Odoo with {WORKERS} workers busy (6 s requests)",
          f"{WORKERS}/{WORKERS} in-flight requests answered 200; exit code 0 after {stop_took:.0f} s",
          recover)


def test_postgres_killed_under_write_load_keeps_every_acknowledged_write(stack: Stack, http, drill):
    """Writes through Odoo (one JSON-RPC create per call) while PostgreSQL is SIGKILLed:
    every create Odoo acknowledged is there after crash recovery, and the WAL archive
    has no gap (the image's verifier)."""
    tag = f"load-{secrets.token_hex(5)}"
    acked: list[int] = []
    acked_at: list[float] = []  # wall-clock time of each acknowledgement
    failures: list[str] = []
    stop = threading.Event()

    def writer() -> None:
        i = 0
        while not stop.is_set():
            i += 1
            try:
                acked.append(call_kw(http, stack.url(), "res.partner", "create", {"name": f"{tag} {i}"}))
                acked_at.append(time.time())
            except Exception as e:  # refused writes during the outage are expected
                failures.append(type(e).__name__)
                stop.wait(0.2)

    t = threading.Thread(target=writer, daemon=True)
    t.start()
    try:
        wait_for(lambda: len(acked) >= 20, 120, "20 acknowledged writes", interval=0.2)
        at_kill = len(acked)
        restarted = kill_until_restarted(stack, "postgres")
        stack.wait_service_healthy("postgres", timeout=180)
        wait_for(lambda: len(acked) >= at_kill + 20, 180, "writes resumed", interval=0.2)
    finally:
        stop.set()
        t.join(60)
    recover = min(at for at in acked_at if at > restarted) - restarted  # the first write acknowledged after
    found = call_kw(http, stack.url(), "res.partner", "search", [("name", "like", f"{tag} %")])
    missing = set(acked) - set(found)
    assert not missing, f"{len(missing)} acknowledged writes missing after crash recovery"
    stack.archive_wal()  # the current segment switched out and archived, then: no gap
    assert_archive_verified(stack)
    drill("postgres killed (kill -9) under write load through Odoo",
          f"{len(acked)}/{len(acked)} acknowledged writes present; {len(failures)} write(s) refused "
          "during the outage; WAL archive verified without gap", recover)


def test_wal_archive_read_only_keeps_segments_then_catches_up(stack: Stack, drill):
    """The archive directory becomes unwritable: archiving fails visibly (log line and
    pg_stat_archiver), PostgreSQL keeps every segment (.ready), nothing half-written lands
    in the archive, and once writable again the archiver catches up with no gap."""
    q = stack.psql

    def ready() -> int:
        return int(q("SELECT count(*) FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready'"))

    failed_before = int(q("SELECT failed_count FROM pg_stat_archiver"))
    pg = stack.container_id("postgres")
    docker("exec", "-u", "0", pg, "chmod", "0500", "/wal_archive")
    try:
        segments: list[str] = []
        for _ in range(3):
            q("CREATE TABLE IF NOT EXISTS lw_drill_ro (x int); INSERT INTO lw_drill_ro VALUES (1)")
            segments.append(q("SELECT pg_walfile_name(pg_switch_wal())"))
        wait_for(lambda: int(q("SELECT failed_count FROM pg_stat_archiver")) > failed_before, 60,
                 "a failed archive attempt", interval=0.5)
        assert ready() >= 1, "PostgreSQL must keep the unarchived segments"
        assert "not writable" in stack.logs("postgres", tail=200)
        stuck = q("SELECT last_failed_wal FROM pg_stat_archiver")
        assert stack.exec("postgres", "test", "-e", f"/wal_archive/{stuck}.gz", check=False).returncode != 0
    finally:
        docker("exec", "-u", "0", pg, "chmod", "0700", "/wal_archive")
    start = time.monotonic()  # the end of the fault: the archive is writable again
    wait_for(lambda: ready() == 0, 180, "the archiver caught up", interval=0.5)
    recover = time.monotonic() - start
    for seg in segments:
        assert stack.archived(seg), seg
    assert_archive_verified(stack)
    drill("WAL archive read-only", "archiving failed visibly (log + pg_stat_archiver), segments kept; "
          "caught up with no gap once writable", recover)
