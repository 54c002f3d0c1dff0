"""Stand-ins for Odoo's two ports, for tests that are not about Odoo (tests/nginx, bench).

``HttpUpstream`` answers every request with a JSON description of what it received
(query parameters shape the answer: ``status=N``, ``redirect=1``, ``cookie=1`` adds a
Set-Cookie, ``cc=...`` a Cache-Control, ``etag=X`` an ETag and 304 to a matching
If-None-Match, ``delay=S`` answers after S seconds); ``WsEchoUpstream`` is a minimal
RFC 6455 websocket echo server. Both serve on a free loopback port in a thread and keep
what they received in ``seen``.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import socketserver
import struct
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class _HttpHandler(BaseHTTPRequestHandler):
    server: HttpUpstream

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        received = 0
        while received < length:
            chunk = self.rfile.read(min(1 << 20, length - received))
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


def ws_frame(payload: bytes, opcode: int = 1) -> bytes:
    """One final, unmasked (server) websocket frame."""
    n = len(payload)
    if n < 126:
        return bytes([0x80 | opcode, n]) + payload
    if n < 65536:
        return bytes([0x80 | opcode, 126]) + struct.pack("!H", n) + payload
    return bytes([0x80 | opcode, 127]) + struct.pack("!Q", n) + payload


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
                self.wfile.write(ws_frame(payload[:2], opcode=8))
                return
            if opcode == 9:  # ping
                self.wfile.write(ws_frame(payload, opcode=10))
                continue
            text = payload.decode()
            if text.startswith("push-after "):
                # The scenario's idle period: nothing crosses the connection meanwhile.
                threading.Event().wait(float(text.split()[1]))
                self.wfile.write(ws_frame(b"push"))
            else:
                self.wfile.write(ws_frame(b"echo:" + payload))


class WsEchoUpstream(_Background, socketserver.ThreadingTCPServer):
    """Stand-in for Odoo's gevent (websocket) port."""

    allow_reuse_address = True
    handler = _WsHandler
