"""Run the project's nginx configuration on loopback, plus stand-in upstreams.

``NginxRun`` starts ``nginx/entrypoint.sh`` from the repository with the host's
nginx binary: the same validation, certificate and template code the image
runs, with the image's paths pointed into a temporary directory and the
listeners on random loopback ports. Clients connect from 127.0.0.2 so the
address nginx sees differs from nginx's own address towards the upstream
(127.0.0.1).

Stand-ins (for what these tests are not about): ``HttpUpstream`` answers every
request with a JSON description of what it received (query parameters shape
the answer: ``status=N``, ``redirect=1``, ``cookie=1`` adds a Set-Cookie,
``cc=...`` a Cache-Control, ``etag=X`` an ETag and 304 to a matching
If-None-Match, ``delay=S`` answers after S seconds); ``WsEchoUpstream`` is a
minimal RFC 6455 websocket echo server. Used by tests/nginx and bench/.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.client
import io
import json
import os
import re
import signal
import socket
import socketserver
import ssl
import struct
import subprocess
import tempfile
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from tests.support.net import free_port
from tests.support.wait import wait_for

# An access log line of the loomworks log_format: request, status, and the static
# cache's verdict (cs=$upstream_cache_status: HIT, MISS, ... or "-").
ACCESS_LOG_CACHE = re.compile(r'"(?P<host>[^"]*)" \[[^]]*\] "GET (?P<uri>\S+) HTTP/[\d.]+" '
                              r'(?P<status>\d{3}) .* cs=(?P<cs>\S+)$')

REPO = Path(__file__).resolve().parents[2]
ENTRYPOINT = REPO / "nginx" / "entrypoint.sh"
CLIENT_ADDR = "127.0.0.2"  # loopback alias the clients connect from
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
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


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


@dataclass
class NginxRun:
    """nginx started through the project's entrypoint, on loopback ports."""

    env: dict[str, str]
    root: Path
    proc: subprocess.Popen | None = None
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log_path = self.root / "nginx.log"

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

    def tls_context(self) -> ssl.SSLContext:
        """A client context that trusts exactly this nginx's certificate."""
        return ssl.create_default_context(cafile=str(self.cert))


# --- HTTP client -------------------------------------------------------------


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


# --- upstream stand-ins ------------------------------------------------------


class _HttpHandler(BaseHTTPRequestHandler):
    server: HttpUpstream

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        received = 0
        while received < length:
            chunk = self.rfile.read(min(MB, length - received))
            if not chunk:
                break
            received += len(chunk)
        seen = {
            "upstream": "http",
            "method": self.command,
            "path": self.path,
            "peer": self.client_address[0],
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body_len": received,
        }
        self.server.seen.append(seen)
        query = {k: v[-1] for k, v in parse_qs(urlsplit(self.path).query).items()}
        if "delay" in query:  # a slow upstream (bundle generation), not synchronisation
            threading.Event().wait(float(query["delay"]))
        status = int(query.get("status", 200))
        extra: dict[str, str] = {}
        if query.get("redirect") == "1":
            status, extra = 302, {"Location": "/elsewhere"}
        if query.get("cookie") == "1":
            extra["Set-Cookie"] = "session_id=lwtest; Path=/; HttpOnly"
        if "cc" in query:
            extra["Cache-Control"] = query["cc"]
        if "etag" in query:
            etag = f'"{query["etag"]}"'
            extra["ETag"] = etag
            if self.headers.get("If-None-Match") == etag:
                self.send_response(304)
                for k, v in extra.items():
                    self.send_header(k, v)
                self.end_headers()
                return
        payload = (json.dumps(seen) + "\n" + "x" * 2048).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for k, v in extra.items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = _handle


class _Background:
    """Mixin for the stand-in upstreams: serve on a free loopback port in a thread."""

    daemon_threads = True
    handler: type

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), self.handler)  # type: ignore[call-arg]
        self.seen: list[dict] = []
        self.port = self.server_address[1]  # type: ignore[attr-defined]
        threading.Thread(target=self.serve_forever, daemon=True).start()  # type: ignore[attr-defined]

    def close(self) -> None:
        self.shutdown()  # type: ignore[attr-defined]
        self.server_close()  # type: ignore[attr-defined]


class HttpUpstream(_Background, ThreadingHTTPServer):
    """Stand-in for Odoo's HTTP port: echoes what it received as JSON."""

    handler = _HttpHandler


def ws_frame(payload: bytes, opcode: int = 1, mask: bool = True) -> bytes:
    """One final websocket frame (client frames are masked, server frames not)."""
    head = bytes([0x80 | opcode])
    n = len(payload)
    mbit = 0x80 if mask else 0
    if n < 126:
        head += bytes([mbit | n])
    elif n < 65536:
        head += bytes([mbit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([mbit | 127]) + struct.pack("!Q", n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def ws_read(rfile: io.BufferedIOBase) -> tuple[int, bytes]:
    """Read one frame: (opcode, unmasked payload). Raises EOFError on close."""

    def exact(n: int) -> bytes:
        data = rfile.read(n)
        if data is None or len(data) < n:
            raise EOFError("websocket connection closed")
        return data

    b0, b1 = exact(2)
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack("!H", exact(2))[0]
    elif n == 127:
        n = struct.unpack("!Q", exact(8))[0]
    key = exact(4) if b1 & 0x80 else b"\0\0\0\0"
    payload = bytes(b ^ key[i % 4] for i, b in enumerate(exact(n)))
    return b0 & 0x0F, payload


def ws_accept(key: str) -> str:
    return base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()  # noqa: S324


def read_head(rfile: io.BufferedIOBase) -> tuple[str, dict[str, str]]:
    first = rfile.readline().decode("latin-1").rstrip("\r\n")
    headers: dict[str, str] = {}
    while True:
        line = rfile.readline().decode("latin-1").rstrip("\r\n")
        if not line:
            break
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return first, headers


class _WsHandler(socketserver.StreamRequestHandler):
    """Echo server: "echo" replies ``echo:<text>``; ``push-after <s>`` makes the
    server send ``push`` by itself after <s> seconds of silence."""

    server: WsEchoUpstream

    def handle(self) -> None:
        first, headers = read_head(self.rfile)
        self.server.seen.append({"request": first, "headers": headers, "peer": self.client_address[0]})
        if headers.get("upgrade", "").lower() != "websocket" or "sec-websocket-key" not in headers:
            body = b"not a websocket request\n"
            self.wfile.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
                             % len(body) + body)
            return
        echo = {k: headers.get(k, "") for k in ("host", "x-forwarded-host", "x-forwarded-for",
                                                 "x-real-ip", "x-forwarded-proto")}
        self.wfile.write(
            ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             f"Sec-WebSocket-Accept: {ws_accept(headers['sec-websocket-key'])}\r\n"
             f"X-Upstream: ws\r\nX-Seen: {json.dumps(echo)}\r\n\r\n").encode()
        )
        while True:
            try:
                opcode, payload = ws_read(self.rfile)
            except (EOFError, OSError):
                return
            if opcode == 8:  # close
                self.wfile.write(ws_frame(payload[:2], opcode=8, mask=False))
                return
            if opcode == 9:  # ping
                self.wfile.write(ws_frame(payload, opcode=10, mask=False))
                continue
            text = payload.decode()
            if text.startswith("push-after "):
                # The scenario's idle period: nothing crosses the connection meanwhile.
                threading.Event().wait(float(text.split()[1]))
                self.wfile.write(ws_frame(b"push", mask=False))
            else:
                self.wfile.write(ws_frame(b"echo:" + payload, mask=False))


class WsEchoUpstream(_Background, socketserver.ThreadingTCPServer):
    """Stand-in for Odoo's gevent (websocket) port."""

    allow_reuse_address = True
    handler = _WsHandler


@dataclass
class WsClient:
    sock: socket.socket
    rfile: io.BufferedIOBase
    status: int
    headers: dict[str, str]

    def send(self, text: str) -> None:
        self.sock.sendall(ws_frame(text.encode()))

    def recv(self, timeout: float) -> str:
        self.sock.settimeout(timeout)
        opcode, payload = ws_read(self.rfile)
        assert opcode == 1, f"expected a text frame, got opcode {opcode}"
        return payload.decode()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.sendall(ws_frame(struct.pack("!H", 1000), opcode=8))
        self.sock.close()


def ws_connect(port: int, host: str, path: str, *, context: ssl.SSLContext | None = None,
               timeout: float = 10, source: str = CLIENT_ADDR) -> WsClient:
    """Websocket handshake through nginx (TLS when ``context`` is given)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout, (source, 0))
    if context is not None:
        sock = context.wrap_socket(sock, server_hostname=host)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
         f"Origin: https://{host}\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n").encode()
    )
    rfile = sock.makefile("rb")
    first, headers = read_head(rfile)
    status = int(first.split()[1])
    if status == 101:
        assert headers.get("sec-websocket-accept") == ws_accept(key), headers
    return WsClient(sock, rfile, status, headers)
