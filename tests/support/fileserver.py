"""A throwaway static file server (thread) for download tests: loopback, or the Docker
bridge's gateway address so that `docker build` steps can reach it."""

from __future__ import annotations

import contextlib
import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def serve_dir(directory: Path, host: str = "127.0.0.1") -> Iterator[str]:
    """Serve ``directory`` on ``host`` at a free port; yields the base URL (no trailing /)."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer((host, 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def docker_bridge_gateway(docker_client) -> str:
    """The host's address on Docker's default bridge (where build steps run)."""
    cfg = docker_client.networks.get("bridge").attrs["IPAM"]["Config"]
    return next(c["Gateway"] for c in cfg if c.get("Gateway"))
