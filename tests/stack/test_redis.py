"""The Redis image: password required, authenticated health check, AOF persistence."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.containers import Resources, secret_file, unique, wait_exited, wait_health
from tests.support.net import host_port
from tests.support.resp import Resp, RespError

pytestmark = pytest.mark.docker


@pytest.fixture
def run_redis(docker_client, redis_image: str, tmp_path: Path) -> Iterator:
    """Start Redis containers with a password file; all removed afterwards (volumes too)."""
    made = Resources(docker_client)

    def run(*, password: str | None = None, volume: str | None = None, env: dict | None = None, **kw):
        environment = dict(env or {})
        mounts = {}
        if password is not None:
            (secret_dir := tmp_path / unique("pw")).mkdir()
            mounts.update(secret_file(secret_dir, "redis_password", password))
            environment.setdefault("REDIS_PASSWORD_FILE", "/run/secrets/redis_password")
        if volume:
            if volume not in made.volumes:
                made.volumes.append(volume)
            mounts[volume] = {"bind": "/data", "mode": "rw"}
        return made.container(redis_image, role="redis", environment=environment, volumes=mounts,
                              ports={"6379/tcp": ("127.0.0.1", None)}, **kw)

    yield run
    made.cleanup()


def auth_client(c, password: str) -> Resp:
    r = Resp("127.0.0.1", host_port(c, 6379))
    assert r.call("AUTH", password) == "OK"
    return r


def test_refuses_to_start_without_a_password(run_redis):
    c = run_redis()
    assert wait_exited(c) != 0
    logs = c.logs().decode()
    assert "REDIS_PASSWORD (or REDIS_PASSWORD_FILE) is required" in logs
    assert "Ready to accept connections" not in logs


@pytest.mark.parametrize(("var", "value"), [
    ("REDIS_APPENDFSYNC", "sometimes"), ("REDIS_PORT", "70000"), ("REDIS_MAXMEMORY", "lots"),
])
def test_bad_setting_stops_with_one_clear_line(run_redis, var, value):
    c = run_redis(password="pw-" + secrets.token_hex(4), env={var: value})
    assert wait_exited(c) == 1
    lines = c.logs().decode().strip().splitlines()
    assert len(lines) == 1, lines
    assert var in lines[0] and value in lines[0]


def test_password_is_required_and_healthcheck_authenticates(run_redis):
    password = 'odd "pw" \\n ' + secrets.token_hex(8)
    c = run_redis(password=password)
    wait_health(c)
    with Resp("127.0.0.1", host_port(c, 6379)) as r:
        with pytest.raises(RespError, match="NOAUTH"):
            r.call("PING")
        with pytest.raises(RespError, match="WRONGPASS"):
            r.call("AUTH", "not-the-password")
        assert r.call("AUTH", password) == "OK" and r.call("PING") == "PONG"
        assert r.call("CONFIG", "GET", "appendonly") == ["appendonly", "yes"]
    c.reload()
    log = c.attrs["State"]["Health"]["Log"]
    assert log and log[-1]["ExitCode"] == 0 and "PONG" in log[-1]["Output"]


def test_password_not_in_inspect_process_args_or_environment(run_redis):
    password = "pw-" + secrets.token_hex(12)
    c = run_redis(password=password)
    wait_health(c)
    c.reload()
    assert password not in json.dumps(c.attrs)
    top = c.top(ps_args="-eo pid,args")
    assert password not in json.dumps(top) and any("redis-server" in " ".join(p) for p in top["Processes"])
    for proc in ("cmdline", "environ"):
        out = c.exec_run(["cat", f"/proc/1/{proc}"]).output.decode(errors="replace")
        assert out and password not in out, proc
    assert password not in c.logs().decode()


def test_runs_unprivileged_on_a_read_only_root(run_redis):
    password = "pw-" + secrets.token_hex(8)
    c = run_redis(password=password, read_only=True,
                  tmpfs={"/run/redis": "size=1m,uid=999,gid=999,mode=0700"},
                  cap_drop=["ALL"], security_opt=["no-new-privileges:true"])
    wait_health(c)
    assert c.exec_run(["id", "-u"]).output.decode().strip() != "0"
    with auth_client(c, password) as r:
        assert r.call("SET", "k", "v") == "OK"


def test_aof_survives_container_recreation(run_redis):
    password = "pw-" + secrets.token_hex(8)
    volume = unique("redis-data")
    first = run_redis(password=password, volume=volume)
    wait_health(first)
    with auth_client(first, password) as r:
        assert r.call("SET", "invoice:1", "paid") == "OK" and r.call("RPUSH", "queue", "a", "b") == 2
    first.stop(timeout=10)
    assert wait_exited(first) == 0
    first.remove()

    second = run_redis(password=password, volume=volume)
    wait_health(second)
    with auth_client(second, password) as r:
        assert r.call("GET", "invoice:1") == "paid" and r.call("LRANGE", "queue", "0", "-1") == ["a", "b"]
    files = second.exec_run(["ls", "/data/appendonlydir"]).output.decode().split()
    assert "appendonly.aof.manifest" in files


def test_aof_always_survives_kill_9(run_redis):
    password = "pw-" + secrets.token_hex(8)
    volume = unique("redis-data")
    first = run_redis(password=password, volume=volume, env={"REDIS_APPENDFSYNC": "always"})
    wait_health(first)
    with auth_client(first, password) as r:
        for i in range(100):
            r.call("SET", f"k{i}", str(i))
    first.kill(signal="SIGKILL")
    first.wait(timeout=10)
    first.remove()
    second = run_redis(password=password, volume=volume)
    wait_health(second)
    with auth_client(second, password) as r:
        assert r.call("DBSIZE") == 100 and r.call("GET", "k99") == "99"
