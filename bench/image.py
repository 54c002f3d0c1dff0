"""Section `image`: the ERP image's size (anchor: odoo:18's published 1.99 GB), cold build
(``--no-cache``; BuildKit's pip cache mount stays), rebuild after a one-line addon change (in a
hard-linked copy of the build context: the repository is never touched), start to healthy on an
empty database (create + init) and on the existing one; the sizes of the other images."""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import requests

from bench import Context, say
from bench.report import BenchFailure, Row, median
from tests.support.containers import ErpLab, exited, health, logs
from tests.support.images import ODOO_CONTEXT, REPO, build, build_log, tag
from tests.support.wait import wait_for

OTHER_IMAGES = ("erp-dev", "postgres", "nginx", "redis")
SIZE_GOAL_MB = 600  # issue 15: with the patched wkhtmltox and the six default languages
LAYER_ROWS = 6  # the largest layers get a row each; the rest one row together


def layer_name(created_by: str) -> str:
    """A short name for a layer from its `docker history` CreatedBy."""
    text = re.sub(r"^/bin/sh -c #\(nop\)\s*", "", created_by).replace(" # buildkit", "")
    if not text:
        return "base image (debian:bookworm-slim)"
    if m := re.match(r"COPY (/\S+)", text):  # COPY --from=stage: the path copied
        return f"COPY {m[1]}"
    if "apt-get install" in text and "tini" in text:
        return "RUN runtime packages (Python, libraries, PDF renderer, fonts)"
    if m := re.search(r"set -eux;\s*(.{0,50})", text):
        return f"RUN {m[1].strip()}"
    return text[:60]


def layers(client, image: str) -> list[tuple[str, float]]:
    """(name, MB) of the image's non-empty layers, largest first."""
    out = [(layer_name(h.get("CreatedBy", "")), h["Size"] / 1e6)
           for h in client.images.get(image).history() if h.get("Size")]
    return sorted(out, key=lambda x: -x[1])


def layer_rows(client, image: str, raw: dict) -> list[Row]:
    found = raw["layers_mb"] = [(n, round(mb, 1)) for n, mb in layers(client, image)]
    renderer = client.images.get(image).attrs["Config"]["Labels"].get("org.loomworks.pdf-renderer")
    total = raw["size_bytes"] / 1e6
    rows = [Row("1 image", f"loomworks/erp size, PDF renderer {renderer}", total, "MB", SIZE_GOAL_MB,
                "goal (issue 15): patched wkhtmltox, six languages, 0.30x odoo:18",
                note="" if renderer == "wkhtmltox" else "the goal's renderer is wkhtmltox: not this image")]
    rows += [Row("1 image", f"layer: {name}", mb, "MB", note=f"{mb / total:.0%} of the image")
             for name, mb in found[:LAYER_ROWS]]
    rest = found[LAYER_ROWS:]
    rows.append(Row("1 image", f"layers: the other {len(rest)}", sum(mb for _, mb in rest), "MB"))
    return rows


def executed_steps(log: str) -> list[str]:
    """Build steps of BuildKit's plain progress that ran (not CACHED), e.g. '[addons 2/3] RUN ...'."""
    names = dict(re.findall(r"^#(\d+) (\[[^\]]+\] .{0,60})", log, re.M))
    cached = set(re.findall(r"^#(\d+) CACHED", log, re.M))
    done = set(re.findall(r"^#(\d+) DONE", log, re.M))
    steps = [names[n] for n in sorted(done - cached, key=int) if n in names]
    return [s for s in steps if not s.startswith("[internal]") and " FROM " not in s]


def context_copy() -> Path:
    """Hard-linked copy of the build context (git's files, untracked but not ignored ones, odoo-src)."""
    tmp = Path(tempfile.mkdtemp(prefix="lwbench-ctx-"))
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True,
                           text=True, check=True).stdout.split()
    for f in [*files, ".dockerignore"]:
        if (REPO / f).is_file() and not (tmp / f).exists():
            (tmp / f).parent.mkdir(parents=True, exist_ok=True)
            os.link(REPO / f, tmp / f)
    subprocess.run(["cp", "-al", str(ODOO_CONTEXT), str(tmp / "odoo-src")], check=True)
    return tmp


def edit_one_line(ctx: Path) -> str:
    target = sorted(ctx.glob("addons/*/__init__.py"))[0]
    text = target.read_text()
    target.unlink()  # break the hard link: the repository's file stays as it is
    target.write_text(text + f"# bench {secrets.token_hex(4)}\n")
    return str(target.relative_to(ctx))


def start_to_healthy(ctx: Context, lab: ErpLab) -> dict[str, float]:
    """`docker run` of the ERP image on `bench` until /web/health answers 200 and until Docker
    reports it healthy (seconds); then `docker stop`."""
    t0 = time.monotonic()
    c = ctx.erp(lab)
    say(f"  {c.name}: run at {time.strftime('%H:%M:%S')}")
    url = lab.url(c, "/web/health")
    out: dict[str, float] = {}

    def both() -> bool:
        with contextlib.suppress(requests.RequestException):
            if "http_200_s" not in out and requests.get(url, timeout=2).status_code == 200:
                out["http_200_s"] = round(time.monotonic() - t0, 1)
        if "docker_healthy_s" not in out and health(c) == "healthy":
            out["docker_healthy_s"] = round(time.monotonic() - t0, 1)
        if exited(c):
            raise BenchFailure(f"an ERP container exited while starting:\n{logs(c)[-3000:]}")
        return len(out) == 2

    try:
        wait_for(both, 600, f"{c.name}: /web/health 200 and healthy", interval=0.2)
    except TimeoutError as exc:
        raise BenchFailure(f"an ERP container never became healthy: {exc}, {out}") from None
    c.stop(timeout=40)
    c.remove(v=True)
    say(f"  {c.name}: {out}")
    return out


def run(ctx: Context) -> list[Row]:
    raw = ctx.raw["image"] = {}
    erp = tag("erp")
    if ctx.quick:
        build(erp)
    else:
        say(f"cold build of {erp} (--no-cache)")
        t0 = time.monotonic()
        build(erp, options=["--no-cache"])
        raw["cold_build_s"] = round(time.monotonic() - t0, 1)
        say(f"  {raw['cold_build_s']} s")
    raw["size_bytes"] = ctx.client.images.get(erp).attrs["Size"]

    say("rebuild after a one-line addon change, in a copy of the build context")
    lab = ctx.lab(initialised=False)
    edited = {"tag": lab.image_tag("erp-edit"), "dockerfile": "docker/Dockerfile", "target": "runtime"}
    copy = context_copy()
    try:
        build_log(**edited, context=copy)  # warm: the repository's content
        raw["addon_rebuild_changed_file"] = edit_one_line(copy)
        t0 = time.monotonic()
        log = build_log(**edited, context=copy)
        raw["addon_rebuild_s"] = round(time.monotonic() - t0, 1)
        raw["addon_rebuild_steps_run"] = executed_steps(log)
        say(f"  {raw['addon_rebuild_s']} s, steps run: {raw['addon_rebuild_steps_run']}")
    finally:
        shutil.rmtree(copy, ignore_errors=True)

    cold = raw.get("cold_build_s")
    rows = [
        Row("1 image", "loomworks/erp final size", raw["size_bytes"] / 1e9, "GB", 1.99,
            "odoo:18 (Docker Hub)", published=True),
        Row("1 image", "cold build (--no-cache; pip cache mount kept)",
            cold if cold is not None else "skipped (--quick)", "s" if cold is not None else ""),
        Row("1 image", "rebuild after a one-line addon change", raw["addon_rebuild_s"], "s", cold,
            "cold build, same run" if cold is not None else "",
            note=f"{len(raw['addon_rebuild_steps_run'])} build steps ran"),
        *layer_rows(ctx.client, erp, raw),
    ]
    sizes = raw["other_sizes_mb"] = {}
    for name in OTHER_IMAGES:
        sizes[name] = ctx.client.images.get(build(tag(name))).attrs["Size"] / 1e6
        rows.append(Row("1 image", f"loomworks/{name} size", sizes[name], "MB"))

    assert not ctx.db_ready, "the image section runs first: its first start initialises `bench`"
    say("start to healthy: empty database, then the existing one")
    raw["first_start_init"] = start_to_healthy(ctx, lab)
    ctx.db_ready = True
    runs = 1 if ctx.quick else 3
    raw["existing_db_starts"] = [start_to_healthy(ctx, lab) for _ in range(runs)]
    return [*rows,
            Row("2 start", "loomworks/erp start to healthy, empty database (create + init)",
                raw["first_start_init"]["docker_healthy_s"], "s"),
            Row("2 start", "loomworks/erp start to healthy, existing database",
                median([s["docker_healthy_s"] for s in raw["existing_db_starts"]]), "s",
                note=f"median of {runs}")]
