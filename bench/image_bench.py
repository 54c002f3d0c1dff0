#!/usr/bin/env python3
"""Benchmark the ERP image: size, cold build, rebuild after a one-line addon change,
first start (create + initialise a database) and start-to-healthy on an existing one.

  cold build      `docker build --no-cache` of the production target from the repository
                  (layer cache off; BuildKit's pip cache mount stays unless --prune-pip-cache)
  addon rebuild   in a hard-linked copy of the build context, one line appended to an addon
                  file (the link is broken first, the repository is never touched), then a
                  rebuild: the time and the build steps that actually ran
  first start     a throwaway PostgreSQL 15 container (tests/docker/pg) on a private network,
                  the image started with DB_NAME: time until GET /web/health answers 200
  existing db     a second container on the same database: time until /web/health is 200,
                  and until Docker reports it healthy (health checks every 1 s for the measure)

Prints a summary and writes JSON to bench/results/image.json.
Usage: .venv/bin/python bench/image_bench.py [--skip-cold] [--prune-pip-cache] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support.images import (  # noqa: E402
    build,
    build_args_for_host,
    ensure_base_image,
    prepare_odoo_context,
)
from tests.support.odoo_tree import find_odoo_tree  # noqa: E402

TAG = "loomworks/erp:bench"
ENV = {**os.environ, "DOCKER_BUILDKIT": "1"}


def docker_build(context: Path, *extra: str) -> tuple[float, str]:
    cmd = ["docker", "build", "--progress=plain", "-f", str(context / "docker/Dockerfile"),
           "--target", "runtime", "-t", TAG, *build_args_for_host(), *extra, str(context)]
    t0 = time.monotonic()
    r = subprocess.run(cmd, env=ENV, capture_output=True, text=True, check=False)
    took = time.monotonic() - t0
    if r.returncode != 0:
        raise SystemExit(f"build failed:\n{r.stderr[-4000:]}")
    return took, r.stderr


def executed_steps(log: str) -> list[str]:
    """Build steps that ran (not CACHED), e.g. '[addons 2/3] RUN ...'."""
    names = dict(re.findall(r"^#(\d+) (\[[^\]]+\] .{0,60})", log, re.M))
    cached = set(re.findall(r"^#(\d+) CACHED", log, re.M))
    done = set(re.findall(r"^#(\d+) DONE", log, re.M))
    steps = [names[n] for n in sorted(done - cached, key=int) if n in names]
    return [s for s in steps if not s.startswith("[internal]") and " FROM " not in s]


def context_copy() -> Path:
    """Hard-linked copy of the build context (git-tracked files + odoo-src)."""
    tmp = Path(tempfile.mkdtemp(prefix="lwbench-ctx-"))
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True,
                           text=True, check=True).stdout.split()
    for f in files:
        src, dst = REPO / f, tmp / f
        if src.is_file():
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.link(src, dst)
    subprocess.run(["cp", "-al", str(REPO / "odoo-src"), str(tmp / "odoo-src")], check=True)
    for f in (".dockerignore",):
        if (REPO / f).exists() and not (tmp / f).exists():
            os.link(REPO / f, tmp / f)
    return tmp


def edit_one_line(ctx: Path) -> str:
    target = sorted(ctx.glob("addons/*/__init__.py"))[0]
    text = target.read_text()
    target.unlink()  # break the hard link: the repository's file stays as it is
    target.write_text(text + f"# bench {secrets.token_hex(4)}\n")
    return str(target.relative_to(ctx))


class Stack:
    def __init__(self) -> None:
        self.id = secrets.token_hex(4)
        self.net = f"lwbench-net-{self.id}"
        self.pg = f"lwbench-pg-{self.id}"
        self.password = secrets.token_urlsafe(12)
        self.containers: list[str] = []

    def sh(self, *args: str) -> str:
        return subprocess.run(args, capture_output=True, text=True, check=True).stdout.strip()

    def start_pg(self) -> None:
        pg_image = build("lwtest/pg15:test", dockerfile="tests/docker/pg/Dockerfile",
                         context=REPO / "tests/docker/pg")
        self.sh("docker", "network", "create", self.net)
        self.sh("docker", "run", "-d", "--name", self.pg, "--network", self.net, "-e", "APP_USER=odoo",
                "-e", f"APP_PASSWORD={self.password}", pg_image)
        self.containers.append(self.pg)
        deadline = time.monotonic() + 60
        while subprocess.run(["docker", "exec", "-u", "postgres", self.pg, "pg_isready", "-q", "-h", "/tmp"],
                             check=False).returncode != 0:
            if time.monotonic() > deadline:
                raise SystemExit("postgres container did not start")
            time.sleep(0.3)

    def run_erp(self, image: str) -> tuple[str, int]:
        name = f"lwbench-erp-{secrets.token_hex(4)}"
        self.sh("docker", "run", "-d", "--name", name, "--network", self.net, "-p", "127.0.0.1::8069",
                "-e", f"DB_HOST={self.pg}", "-e", "DB_PASSWORD", "-e", "ADMIN_PASSWORD",
                "-e", "DB_NAME=bench",
                "--health-interval=1s", "--health-timeout=3s", "--health-retries=3", image)
        self.containers.append(name)
        port = int(self.sh("docker", "port", name, "8069/tcp").splitlines()[0].rsplit(":", 1)[1])
        return name, port

    def time_to_ready(self, image: str, timeout: float = 600) -> dict[str, float]:
        t0 = time.monotonic()
        name, port = self.run_erp(image)
        result: dict[str, float] = {}
        while time.monotonic() - t0 < timeout and len(result) < 2:
            if "http_200_s" not in result:
                try:
                    if requests.get(f"http://127.0.0.1:{port}/web/health", timeout=2).status_code == 200:
                        result["http_200_s"] = round(time.monotonic() - t0, 1)
                except requests.RequestException:
                    pass
            if "docker_healthy_s" not in result:
                state = self.sh("docker", "inspect", "-f", "{{.State.Health.Status}}", name)
                if state == "healthy":
                    result["docker_healthy_s"] = round(time.monotonic() - t0, 1)
            time.sleep(0.2)
        self.sh("docker", "stop", "-t", "40", name)
        return result

    def destroy(self) -> None:
        for c in self.containers:
            subprocess.run(["docker", "rm", "-f", "-v", c], capture_output=True, check=False)
        subprocess.run(["docker", "network", "rm", self.net], capture_output=True, check=False)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--skip-cold", action="store_true", help="no --no-cache build")
    ap.add_argument("--prune-pip-cache", action="store_true",
                    help="also empty BuildKit cache mounts first (affects every project on this engine)")
    ap.add_argument("--runs", type=int, default=3, help="starts on the existing database")
    args = ap.parse_args()

    ensure_base_image()
    tree = find_odoo_tree()
    if tree is None:
        raise SystemExit("no Odoo tree (set ODOO_SRC)")
    prepare_odoo_context(tree)
    out: dict = {"host": {"cpus": os.cpu_count(), "platform": platform.platform()}}

    if not args.skip_cold:
        if args.prune_pip_cache:
            prune = ["docker", "builder", "prune", "-f", "--filter", "type=exec.cachemount"]
            subprocess.run(prune, check=True)
        took, _ = docker_build(REPO, "--no-cache")
        out["cold_build_s"] = round(took, 1)
        out["cold_build_pip_cache"] = "pruned" if args.prune_pip_cache else "kept (BuildKit cache mount)"
    else:
        docker_build(REPO)
    out["size_bytes"] = int(subprocess.run(["docker", "image", "inspect", "-f", "{{.Size}}", TAG],
                                           capture_output=True, text=True, check=True).stdout)

    ctx = context_copy()
    try:
        docker_build(ctx)  # warm: same content as the repository
        changed = edit_one_line(ctx)
        took, log = docker_build(ctx)
        out["addon_rebuild_s"] = round(took, 1)
        out["addon_rebuild_changed_file"] = changed
        out["addon_rebuild_steps_run"] = executed_steps(log)
    finally:
        shutil.rmtree(ctx, ignore_errors=True)
    docker_build(REPO)  # TAG back to the repository's content

    stack = Stack()
    os.environ["DB_PASSWORD"] = stack.password
    os.environ["ADMIN_PASSWORD"] = secrets.token_urlsafe(12)
    try:
        stack.start_pg()
        out["first_start_init"] = stack.time_to_ready(TAG)
        out["existing_db_starts"] = [stack.time_to_ready(TAG) for _ in range(args.runs)]
    finally:
        stack.destroy()

    mb = out["size_bytes"] / 1e6
    print(f"image size:                     {mb:.0f} MB")
    if "cold_build_s" in out:
        print(f"cold build (--no-cache):        {out['cold_build_s']} s"
              f"  (pip cache: {out['cold_build_pip_cache']})")
    print(f"rebuild after 1-line addon edit: {out['addon_rebuild_s']} s"
          f"  steps run: {out['addon_rebuild_steps_run']}")
    print(f"first start (create + init):    {out['first_start_init']}")
    for i, r in enumerate(out["existing_db_starts"], 1):
        print(f"existing database, start {i}:    {r}")
    results = REPO / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / "image.json").write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {results / 'image.json'}")


if __name__ == "__main__":
    main()
