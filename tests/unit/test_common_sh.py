"""docker/lib/common.sh: the shared shell helpers every entrypoint sources."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

COMMON = Path(__file__).resolve().parents[2] / "docker" / "lib" / "common.sh"


def sh(script: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    prog = f"set -Eeuo pipefail; LOG_PREFIX=t; . {COMMON}; {script}"
    return subprocess.run(["bash", "-c", prog], capture_output=True, text=True, env=env or {}, check=False)


def test_file_env_reads_the_file_and_unsets_the_file_var(tmp_path):
    secret = tmp_path / "pw"
    secret.write_text("s3cret\n")
    r = sh('file_env DB_PASSWORD; printf "%s|%s" "$DB_PASSWORD" "${DB_PASSWORD_FILE-unset}"',
           {"DB_PASSWORD_FILE": str(secret)})
    assert r.returncode == 0, r.stderr
    assert r.stdout == "s3cret|unset"


def test_file_env_default_and_plain_value():
    assert sh('file_env X dflt; printf %s "$X"').stdout == "dflt"
    assert sh('file_env X dflt; printf %s "$X"', {"X": "given"}).stdout == "given"


def test_file_env_rejects_both_and_unreadable(tmp_path):
    r = sh("file_env X", {"X": "a", "X_FILE": "/etc/hostname"})
    assert r.returncode == 1
    assert r.stderr.strip() == "t: error: both X and X_FILE are set; use one of them"
    r = sh("file_env X", {"X_FILE": str(tmp_path / "missing")})
    assert r.returncode == 1
    assert "X_FILE: cannot read file" in r.stderr
    assert r.stderr.count("\n") == 1


@pytest.mark.parametrize(("value", "ok"), [("5432", True), ("0", False), ("65536", False), ("54a", False),
                                           ("", False), ("-1", False)])
def test_require_port(value, ok):
    r = sh("require_port DB_PORT", {"DB_PORT": value})
    assert (r.returncode == 0) is ok
    if not ok:
        assert "DB_PORT must be" in r.stderr


@pytest.mark.parametrize(("value", "expected"), [("true", "True"), ("YES", "True"), ("1", "True"),
                                                 ("off", "False"), ("False", "False")])
def test_normalize_bool(value, expected):
    r = sh('normalize_bool PROXY_MODE; printf %s "$PROXY_MODE"', {"PROXY_MODE": value})
    assert r.stdout == expected


def test_normalize_bool_rejects_garbage():
    r = sh("normalize_bool PROXY_MODE", {"PROXY_MODE": "maybe"})
    assert r.returncode == 1
    assert r.stderr.strip() == "t: error: PROXY_MODE must be a boolean (true/false), got 'maybe'"


def test_require_enum():
    assert sh("require_enum LOG_LEVEL info debug", {"LOG_LEVEL": "debug"}).returncode == 0
    r = sh("require_enum LOG_LEVEL info debug", {"LOG_LEVEL": "loud"})
    assert r.returncode == 1
    assert "LOG_LEVEL must be one of: info debug" in r.stderr


def test_wait_until_backs_off_and_gives_up(tmp_path):
    # succeeds on the third attempt: two retries logged with growing delays
    script = 'n=0; probe() { n=$((n+1)); [ $n -ge 3 ]; }; wait_until thing 30 probe; echo ok'
    r = sh(script)
    assert r.returncode == 0
    lines = [ln for ln in r.stderr.splitlines() if "waiting for thing" in ln]
    assert len(lines) == 2
    assert "retry in 0.25s" in lines[0]
    assert "retry in 0.5s" in lines[1]
    # out of budget: one attempt, no retry, and the caller stops there (set -e)
    probes, after = tmp_path / "probes", tmp_path / "after"
    r = sh(f"probe() {{ echo x >> {probes}; false; }}; wait_until never 0 probe; touch {after}")
    assert r.returncode == 1
    assert probes.read_text() == "x\n" and "waiting for never" not in r.stderr
    assert not after.exists()
