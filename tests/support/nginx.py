"""Run the project's nginx configuration on loopback, and talk to it.

``NginxRun`` starts ``nginx/entrypoint.sh`` from the repository with the host's
nginx binary: the same validation, certificate and template code the image
runs, with the image's paths pointed into a temporary directory and the
listeners on random loopback ports. Clients (``request``, ``ws_connect``) connect
from 127.0.0.2 so the address nginx sees differs from nginx's own address towards
the upstream (127.0.0.1). Stand-in upstreams: tests/support/upstreams.py.
"""

from __future__ import annotations

import hashlib
import http.client
import io
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import websocket

from tests.support.net import free_port, port_open
from tests.support.wait import wait_for

# An access log line of the loomworks log_format: request, status, and the static
# cache's verdict (cs=$upstream_cache_status: HIT, MISS, ... or "-").
ACCESS_LOG_CACHE = re.compile(r'"(?P<host>[^"]*)" \[[^]]*\] "GET (?P<uri>\S+) HTTP/[\d.]+" '
                              r'(?P<status>\d{3}) .* cs=(?P<cs>\S+)$')

REPO = Path(__file__).resolve().parents[2]
ENTRYPOINT = REPO / "nginx" / "entrypoint.sh"
CLIENT_ADDR = "127.0.0.2"  # loopback alias the clients connect from
MB = 1024 * 1024


# --- nginx -----------------------------------------------------------------


def entrypoint_env(root: Path, **overrides: str) -> dict[str, str]:
    """Environment for nginx/entrypoint.sh with every image path under ``root``."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
        "LOOMWORKS_LIB": str(REPO / "docker" / "lib"),
        "LW_TEMPLATE_DIR": str(REPO / "nginx" / "conf"),
        "LW_HTML_DIR": str(REPO / "nginx" / "html"),
        "LW_CONF_DIR": str(root / "conf"),
        "LW_RUN_DIR": str(root / "run"),
        "LW_CACHE_DIR": str(root / "cache"),
        "LW_CERT_DIR": str(root / "certs"),
        "LW_SELF_SIGNED_DIR": str(root / "self-signed"),
        "LOOMWORKS_DOMAIN": "loomworks.app",
        "ODOO_HOST": "127.0.0.1",
        "NGINX_HTTP_LISTEN": f"127.0.0.1:{free_port()}",
        "NGINX_HTTPS_LISTEN": f"127.0.0.1:{free_port()}",
        "NGINX_LOCAL_LISTEN": f"127.0.0.1:{free_port()}",
    }
    env.update(overrides)
    return env


def make_root() -> Path:
    # nginx workers run as "nobody" when the tests run as root: keep it traversable.
    root = Path(tempfile.mkdtemp(prefix="lwtest-nginx-"))
    root.chmod(0o755)
    (root / "self-signed").mkdir()
    (root / "certs").mkdir()
    return root


def run_entrypoint(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([str(ENTRYPOINT), *args], env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


@dataclass
class NginxRun:
    """nginx started through the project's entrypoint, on loopback ports."""

    env: dict[str, str]
    root: Path
    proc: subprocess.Popen | None = None
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log_path = self.root / "nginx.log"

    @classmethod
    def create(cls, nginx_bin: str, **overrides: str) -> NginxRun:
        """An unstarted run of ``nginx_bin`` in a new directory; ``overrides`` go to its environment."""
        root = make_root()
        return cls(entrypoint_env(root, NGINX_BIN=nginx_bin, **overrides), root)

    @property
    def domain(self) -> str:
        return self.env["LOOMWORKS_DOMAIN"]

    def _port(self, var: str) -> int:
        return int(self.env[var].rsplit(":", 1)[-1])

    @property
    def http_port(self) -> int:
        return self._port("NGINX_HTTP_LISTEN")

    @property
    def https_port(self) -> int:
        return self._port("NGINX_HTTPS_LISTEN")

    @property
    def local_port(self) -> int:
        return self._port("NGINX_LOCAL_LISTEN")

    @property
    def cert(self) -> Path:
        mounted = Path(self.env["LW_CERT_DIR"]) / "fullchain.pem"
        return mounted if mounted.exists() else Path(self.env["LW_SELF_SIGNED_DIR"]) / "fullchain.pem"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def cache_statuses(self, uri: str, count: int, host: str | None = None,
                       timeout: float = 10) -> list[str]:
        """The cs= fields of the access log's GET lines for ``uri`` (and ``host``), once
        ``count`` are written: nginx logs a request when it is finalised, possibly
        after the client already has the answer."""

        def found() -> list[str] | None:
            out = [m["cs"] for ln in self.log().splitlines()
                   if (m := ACCESS_LOG_CACHE.search(ln)) and m["uri"] == uri
                   and host in (None, m["host"])]
            return out if len(out) >= count else None

        return wait_for(found, timeout, f"{count} access log line(s) for {host or ''}{uri}")

    def start(self, timeout: float = 30) -> NginxRun:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen([str(ENTRYPOINT)], env=self.env, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)

        pid_file = Path(self.env["LW_RUN_DIR"]) / "nginx.pid"

        def up() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"nginx exited with {self.proc.returncode}:\n{self.log()}")
            # nginx writes its pid file after binding its listeners: an open port
            # alone could be someone else's, or a loopback self-connect (a client
            # socket given the very port it dials while nothing listens yet).
            try:
                ours = self.proc is not None and pid_file.read_text().strip() == str(self.proc.pid)
            except OSError:
                return False
            return ours and all(port_open(p) for p in (self.http_port, self.https_port, self.local_port))

        wait_for(up, timeout, "nginx listeners")
        return self

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def tls_context(self) -> ssl.SSLContext:
        """A client context that trusts exactly this nginx's certificate."""
        return ssl.create_default_context(cafile=str(self.cert))


# --- clients -------------------------------------------------------------------


def unverified_tls() -> ssl.SSLContext:
    """A TLS client context that accepts any certificate (for looking at what is served)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def served_cert_sha256(port: int, sni: str) -> str:
    """SHA-256 of the certificate served on 127.0.0.1:``port`` for ``sni``."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
            unverified_tls().wrap_socket(raw, server_hostname=sni) as tls:
        der = tls.getpeercert(binary_form=True)
    assert der
    return hashlib.sha256(der).hexdigest()



@dataclass
class Response:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> dict:
        """The stand-in upstream's JSON line (padding follows it)."""
        return json.loads(self.body.split(b"\n", 1)[0])


class _TLSConn(http.client.HTTPSConnection):
    """HTTPS to 127.0.0.1:port with SNI and Host set to ``host``."""

    def connect(self) -> None:
        sock = socket.create_connection(("127.0.0.1", self.port), self.timeout, self.source_address)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


class _PlainConn(http.client.HTTPConnection):
    def connect(self) -> None:
        self.sock = socket.create_connection(("127.0.0.1", self.port), self.timeout, self.source_address)


def request(port: int, host: str, path: str = "/", *, method: str = "GET", tls: bool = True,
            context: ssl.SSLContext | None = None, headers: dict[str, str] | None = None,
            body: bytes | io.IOBase | None = None, timeout: float = 60,
            source: str = CLIENT_ADDR) -> Response:
    """One request to nginx on loopback, as a client at ``source`` asking for ``host``."""
    if tls:
        conn: http.client.HTTPConnection = _TLSConn(host, port, context=context, timeout=timeout,
                                                    source_address=(source, 0))
    else:
        conn = _PlainConn(host, port, timeout=timeout, source_address=(source, 0))
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return Response(resp.status, resp.headers, resp.read())
    finally:
        conn.close()


class Zeros(io.RawIOBase):
    """A file-like body of ``size`` zero bytes (uploads without holding them in memory)."""

    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        self.left -= n
        return bytes(n)


# --- websocket client ------------------------------------------------------------


def ws_connect(port: int, host: str, path: str, *, context: ssl.SSLContext | None = None,
               timeout: float = 10, source: str = CLIENT_ADDR) -> websocket.WebSocket:
    """A websocket (the websocket-client library) to 127.0.0.1:``port`` from ``source`` for
    ``host`` (Host and a same-origin Origin), TLS when ``context`` is given; it sends a forged
    X-Forwarded-For that nginx must replace."""
    sock = socket.create_connection(("127.0.0.1", port), timeout, (source, 0))
    if context is not None:
        sock = context.wrap_socket(sock, server_hostname=host)
    scheme = "https" if context else "http"
    return websocket.create_connection(f"{scheme.replace('http', 'ws')}://{host}:{port}{path}", socket=sock,
                                       timeout=timeout, origin=f"{scheme}://{host}:{port}",
                                       header=["X-Forwarded-For: 6.6.6.6"])
