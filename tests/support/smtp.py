"""A real SMTP server for mail tests (aiosmtpd, in a thread): AUTH PLAIN/LOGIN with one
user, every accepted message kept. Listens on loopback, or on the host's address on a
Docker network so that containers on it can send to it."""

from __future__ import annotations

import contextlib
import email
import email.message
import email.policy
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


@dataclass
class Mailbox:
    """What the server saw: every session's greeting (the EHLO/HELO name: at least one
    per SMTP session a client opened), every AUTH attempt (login, ok), and accepted messages."""

    user: str
    password: str
    messages: list[email.message.EmailMessage] = field(default_factory=list)
    logins: list[tuple[str, bool]] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    hellos: list[str] = field(default_factory=list)

    async def handle_EHLO(self, server, session, envelope, hostname, responses) -> list[str]:
        session.host_name = hostname  # what aiosmtpd does itself without this hook
        self.hellos.append(hostname)
        return responses

    async def handle_HELO(self, server, session, envelope, hostname) -> str:
        session.host_name = hostname
        self.hellos.append(hostname)
        return f"250 {server.hostname}"

    def authenticator(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login = auth_data.login.decode()
        ok = login == self.user and auth_data.password.decode() == self.password
        self.logins.append((login, ok))
        return AuthResult(success=ok, handled=False)

    async def handle_DATA(self, server, session, envelope) -> str:
        if not session.authenticated:
            return "530 5.7.0 Authentication required"
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 OK"

    def find(self, subject: str) -> email.message.EmailMessage | None:
        return next((m for m in self.messages if m["Subject"] == subject), None)


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def smtp_server(user: str, password: str, host: str = "127.0.0.1") -> Iterator[tuple[Mailbox, int]]:
    """An authenticating SMTP server on ``host`` (plain text: AUTH without TLS is allowed,
    as on a private network); yields the mailbox and the port."""
    box = Mailbox(user, password)
    ctl = Controller(box, hostname=host, port=_free_port(host), authenticator=box.authenticator,
                     auth_require_tls=False, auth_exclude_mechanism=["CRAM-MD5"])
    ctl.start()
    try:
        yield box, ctl.port
    finally:
        ctl.stop()
