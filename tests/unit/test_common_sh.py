"""docker/lib/common.sh: the shared shell helpers every entrypoint sources."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
COMMON = REPO / "docker" / "lib" / "common.sh"


def sh(script: str, env: dict[str, str] | None = None, name: str = "t") -> subprocess.CompletedProcess:
    """Run ``script`` after sourcing common.sh as a program called ``name`` ($0)."""
    prog = f"set -Eeuo pipefail; . {COMMON}; {script}"
    return subprocess.run(["bash", "-c", prog, name], capture_output=True, text=True, env=env or {},
                          check=False)


@pytest.mark.parametrize(("program", "prefix"), [
    ("/usr/local/bin/docker-entrypoint.sh", "entrypoint"), ("docker-healthcheck.sh", "healthcheck"),
    ("/usr/local/bin/archive-wal", "archive-wal"), ("docker/build-base-image", "build-base-image"),
    ("nginx/entrypoint.sh", "entrypoint"),
])
def test_log_prefix_is_the_program_name(program, prefix):
    r = sh('log hello; die "bad thing"', name=program)
    assert r.returncode == 1 and r.stderr.splitlines() == [f"{prefix}: hello", f"{prefix}: error: bad thing"]


def test_renamed_setting_still_works_with_one_warning():
    show = 'renamed OLD_N NEW_N; printf "%s|%s" "${NEW_N-unset}" "${OLD_N-unset}"'
    r = sh(show, {"OLD_N": "4"})
    assert (r.returncode, r.stdout) == (0, "4|unset")
    assert r.stderr.splitlines() == ["t: warning: OLD_N is deprecated; use NEW_N"]
    r = sh(show, {"OLD_N": "4", "NEW_N": "6"})
    assert r.stdout == "6|unset"
    assert r.stderr.splitlines() == ["t: warning: OLD_N is deprecated and ignored (NEW_N is set); use NEW_N"]
    r = sh(show, {"NEW_N": "6"})
    assert (r.stdout, r.stderr) == ("6|unset", "")


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
    assert r.returncode == 1 and r.stderr.strip() == "t: error: both X and X_FILE are set; use one of them"
    r = sh("file_env X", {"X_FILE": str(tmp_path / "missing")})
    assert r.returncode == 1 and "X_FILE: cannot read file" in r.stderr and r.stderr.count("\n") == 1


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
    assert r.returncode == 1 and "LOG_LEVEL must be one of: info debug" in r.stderr


def test_wait_until_backs_off_and_gives_up(tmp_path):
    # succeeds on the third attempt: two retries logged with growing delays
    script = 'n=0; probe() { n=$((n+1)); [ $n -ge 3 ]; }; wait_until thing 30 probe; echo ok'
    r = sh(script)
    assert r.returncode == 0
    lines = [ln for ln in r.stderr.splitlines() if "waiting for thing" in ln]
    assert len(lines) == 2 and "retry in 0.25s" in lines[0] and "retry in 0.5s" in lines[1]
    # out of budget: one attempt, no retry, and the caller stops there (set -e)
    probes, after = tmp_path / "probes", tmp_path / "after"
    r = sh(f"probe() {{ echo x >> {probes}; false; }}; wait_until never 0 probe; touch {after}")
    assert r.returncode == 1 and probes.read_text() == "x\n" and "waiting for never" not in r.stderr
    assert not after.exists()


def test_every_image_script_sources_common_sh_one_way_and_keeps_the_prefix_rule():
    """The four images' programs and the host scripts: one sourcing line, no LOG_PREFIX of
    their own, no die/log of their own."""
    source = re.compile(r'^\. "\$\{LOOMWORKS_LIB:-.+\}/common\.sh"$', re.M)
    scripts = sorted(p for d in ("docker", "postgres", "nginx", "redis", ".ci") for p in (REPO / d).rglob("*")
                     if p.is_file() and p.read_bytes().startswith(b"#!/usr/bin/env bash"))
    names = {str(p.relative_to(REPO)) for p in scripts}
    assert {"docker/entrypoint.sh", "postgres/healthcheck.sh", "docker/bin/fetch-verified"} <= names
    for p in scripts:
        text = p.read_text()
        if p.name == "run" and p.parent.name == ".ci":
            continue  # CI driver: no shared helpers
        assert len(source.findall(text)) == 1, f"{p}: not sourcing common.sh the one way"
        assert "LOG_PREFIX" not in text, p
        assert not re.search(r"^(die|log)\(\)", text, re.M), f"{p} defines its own die/log"
