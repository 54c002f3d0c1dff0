"""A throwaway static file server (thread) for download tests: loopback, or the Docker
bridge's host address so that `docker build` steps can reach it."""

from __future__ import annotations

import contextlib
import fcntl
import functools
import http.server
import ipaddress
import socket
import struct
import threading
from collections.abc import Iterator
from pathlib import Path

SIOCGIFADDR = 0x8915  # linux/sockios.h: an interface's IPv4 address


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


def interface_ipv4(name: str) -> str | None:
    """The IPv4 address of the host's network interface ``name`` (None: no such address)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            packed = fcntl.ioctl(s.fileno(), SIOCGIFADDR, struct.pack("256s", name[:15].encode()))
        except OSError:
            return None
    return socket.inet_ntoa(packed[20:24])


def bridge_host_address(attrs: dict) -> str:
    """The host's address on a Docker bridge network, from ``docker network inspect``
    attributes: the bridge interface's own address, else the recorded Gateway, else the
    subnet's first host. On an engine's first start ever the default bridge records a
    Subnet but no Gateway, so the Gateway alone is not enough."""
    bridge = (attrs.get("Options") or {}).get("com.docker.network.bridge.name")
    address = interface_ipv4(bridge) if bridge else None
    configs = [c for c in (attrs.get("IPAM") or {}).get("Config") or [] if ":" not in c.get("Subnet", ":")]
    gateway = next((c["Gateway"] for c in configs if c.get("Gateway")), None)
    if address or gateway:
        return address or gateway
    if not configs:
        raise ValueError(f"network {attrs.get('Name')!r}: no IPv4 subnet, gateway or bridge address")
    return str(next(ipaddress.ip_network(configs[0]["Subnet"], strict=False).hosts()))


def docker_bridge_gateway(docker_client) -> str:
    """The host's address on Docker's default bridge (where build steps run)."""
    return bridge_host_address(docker_client.networks.get("bridge").attrs)
