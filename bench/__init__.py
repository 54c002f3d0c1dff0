"""`make bench` (`python -m bench`): every Loomworks benchmark beside its anchor, on the test kit
(tests/support). One module per section (image, start, health, proxy, wal, shutdown), the report
in report.py; ``Context`` is what the sections of one run share."""

from __future__ import annotations

import contextlib
import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
from docker.models.containers import Container
from tests.support.containers import ErpLab, addon_copy, wait_health
from tests.support.images import build, tag

RESULTS = Path(__file__).resolve().parent / "results"
# The image's own health check, every second, for start-to-healthy measurements.
HEALTH_1S = {"interval": 1_000_000_000, "timeout": 3_000_000_000, "retries": 3}


def say(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


@contextlib.contextmanager
def sampling(probe: Callable[[], object], every: float = 0.25) -> Iterator[None]:
    """``probe()`` at once and then every ``every`` seconds, in a thread, while the block runs."""
    stop = threading.Event()

    def loop() -> None:
        probe()
        while not stop.wait(every):
            probe()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


@dataclass
class Context:
    """One run: its mode, the Odoo tree, the raw figures per section, and an ERP lab (the kit's:
    loomworks/postgres and ERP containers on a private network) shared by the sections that run
    the ERP image, with one database `bench` (the tests' lwtest_slow addon installed)."""

    quick: bool
    tree: Path
    raw: dict[str, Any] = field(default_factory=dict)
    tmp: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="lwbench-")))
    admin_password: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    db_ready: bool = False
    client: docker.DockerClient = field(default_factory=lambda: docker.from_env(timeout=300))
    _lab: ErpLab | None = None

    def __post_init__(self) -> None:
        self.tmp.chmod(0o755)  # the ERP image's user and postgres read what is put here

    def erp(self, lab: ErpLab, env: dict[str, str] | None = None, **kw: Any) -> Container:
        """An ERP container of the lab on `bench` (``env`` added), lwtest_slow mounted, the image's
        health check every second unless ``kw`` says otherwise (kw: ErpLab.erp's)."""
        addon = self.tmp / "addons" / "lwtest_slow"
        if not addon.exists():
            addon.parent.mkdir()
            addon_copy(addon.parent)
        env = {"DB_NAME": "bench", "ADMIN_PASSWORD": self.admin_password, **(env or {})}
        return lab.erp(env, addon=addon, **{"healthcheck": HEALTH_1S, **kw})

    def lab(self, initialised: bool = True) -> ErpLab:
        if self._lab is None:
            build(tag("postgres"))
            build(tag("erp"))
            self._lab = ErpLab(self.client, image=tag("postgres"), erp_image=tag("erp")).start()
        if initialised and not self.db_ready:
            say("lab: initialising database `bench` with the image (DB_NAME, lwtest_slow mounted)")
            c = self.erp(self._lab)
            wait_health(c, timeout=600)
            c.stop(timeout=45)
            c.remove(v=True)
            self.db_ready = True
        return self._lab

    def close(self) -> None:
        if self._lab is not None:
            self._lab.cleanup()
        self.client.close()
        shutil.rmtree(self.tmp, ignore_errors=True)
