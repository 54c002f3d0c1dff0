"""Ports: a free loopback one to listen on, whether one answers, and a container's published one;
a GET that runs in the background."""

from __future__ import annotations

import socket
import threading

import requests


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def host_port(container, port: int | str) -> int:
    """The loopback port where a docker-SDK container publishes ``port`` (8069 or "8069/tcp")."""
    key = str(port) if "/" in str(port) else f"{port}/tcp"
    container.reload()
    return int(container.ports[key][0]["HostPort"])


def get_in_background(url: str, timeout: float = 60) -> tuple[threading.Thread, dict]:
    """GET ``url`` in a thread; the dict receives status and body, or the error."""
    out: dict = {}

    def get() -> None:
        try:
            r = requests.get(url, timeout=timeout)
            out.update(status=r.status_code, body=r.text)
        except requests.RequestException as exc:
            out.update(error=exc)

    t = threading.Thread(target=get, daemon=True)
    t.start()
    return t, out
