"""The development override's mail catcher: Odoo (the dev image, the whole dev stack) sends a
mail, and the catcher's web page shows it; nothing is delivered anywhere else, even from a
database that names its own mail server (copied from production, or added in the UI): a real
SMTP server that Odoo can reach, with that database's credentials, never hears from Odoo."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import requests

from tests.support.compose import Stack, docker
from tests.support.fileserver import bridge_host_address
from tests.support.rpc import call_kw
from tests.support.smtp import Mailbox, smtp_server
from tests.support.wait import wait_for

pytestmark = [pytest.mark.docker, pytest.mark.odoo]

DEV = ("docker-compose.yml", "docker-compose.dev.yml")
SENDER, RECIPIENT = "dev@loomworks.localhost", "customer@example.com"


@pytest.fixture(scope="module")
def dev_stack(stack_tag: str, erp_dev_image: str) -> Iterator[Stack]:
    st = Stack(files=DEV, prefix="lwtest-devmail")
    st.start()
    try:
        yield st
    finally:
        st.destroy()


def catcher(st: Stack) -> str:
    web = f"http://127.0.0.1:{st.ports['MAIL_WEB_HOST_PORT']}"
    wait_for(lambda: requests.get(f"{web}/messages/", timeout=5).ok, 120, "the mail catcher's web page")
    return web


def caught(web: str, *subjects: str) -> dict[str, dict]:
    """The catcher's messages with these subjects, once it has them all."""
    def all_there() -> dict[str, dict] | None:
        msgs = {m["subject"]: m for m in requests.get(f"{web}/messages/", timeout=5).json()["messages"]}
        return {s: msgs[s] for s in subjects} if all(s in msgs for s in subjects) else None

    return wait_for(all_there, 60, f"{subjects} in the catcher")


def subject(what: str) -> str:
    return f"lwtest dev mail {what} {secrets.token_hex(4)}"


def test_mail_from_odoo_lands_in_the_catcher(dev_stack):
    st = dev_stack
    web = catcher(st)
    subj = subject("config")
    out = st.odoo_shell(
        "ms = env['ir.mail_server']\n"
        f"ms.send_email(ms.build_email({SENDER!r}, [{RECIPIENT!r}], {subj!r}, 'hello from dev'))\n"
        "print('SENT')\n")
    assert "SENT" in out, out[-3000:]
    msg = caught(web, subj)[subj]
    assert msg["recipients"]["to"] == [RECIPIENT]
    body = requests.get(f"{web}/messages/{msg['id']}.plain", timeout=5)
    assert body.status_code == 200 and "hello from dev" in body.text
    page = requests.get(web, timeout=5)
    assert page.status_code == 200 and "MailDump" in page.text


# --- a database's own mail server: never used --------------------------------------------


@dataclass
class Outside:
    """A real SMTP server on the stack's network (the host's address on it: the odoo container
    reaches it), and the ir.mail_server record of the loomworks database that points at it."""

    box: Mailbox
    host: str
    port: int
    user: str
    password: str
    server_id: int

    def heard_nothing(self) -> bool:
        return not (self.box.hellos or self.box.logins or self.box.messages)

    def seen(self) -> str:
        mails = [m["Subject"] for m in self.box.messages]
        return f"sessions {self.box.hellos}, logins {self.box.logins}, mails {mails}"


@pytest.fixture(scope="module")
def outside(dev_stack: Stack) -> Iterator[Outside]:
    st = dev_stack
    net = json.loads(docker("network", "inspect", f"{st.project}_default").stdout)[0]
    host = bridge_host_address(net)
    user, password = "relay-user", "relay-" + secrets.token_urlsafe(12)
    with smtp_server(user, password, host=host) as (box, port):
        # What a production database carries, and what a developer adds in Settings > Technical.
        server_id = call_kw(st.login(), st.url(), "ir.mail_server", "create", {
            "name": "Production relay", "smtp_host": host, "smtp_port": port, "smtp_user": user,
            "smtp_pass": password, "smtp_encryption": "none", "sequence": 1})
        yield Outside(box, host, port, user, password, server_id)


def mail_server_row(st: Stack, db: str, server_id: int) -> str:
    sql = f"SELECT active, smtp_host, smtp_port, smtp_user FROM ir_mail_server WHERE id = {int(server_id)}"  # noqa: S608
    return st.psql(sql, db)


def test_the_running_server_ignores_the_database_s_mail_server(dev_stack, outside):
    """The threaded server, whose registry was built before the record existed: a server action
    sends through Odoo's default route (the record is the preferred server) and names the record."""
    st, o = dev_stack, outside
    web = catcher(st)
    default, named = subject("server default route"), subject("server mail_server_id")
    http = st.login()
    model = call_kw(http, st.url(), "ir.model", "search", [("model", "=", "res.partner")])[0]
    code = ("ms = env['ir.mail_server']\n"
            f"ms.send_email(ms.build_email({SENDER!r}, [{RECIPIENT!r}], {default!r}, 'default'))\n"
            f"ms.send_email(ms.build_email({SENDER!r}, [{RECIPIENT!r}], {named!r}, 'named'), "
            f"mail_server_id={o.server_id})\n")
    action = call_kw(http, st.url(), "ir.actions.server", "create",
                     {"name": "lwtest send mail", "model_id": model, "state": "code", "code": code})
    call_kw(http, st.url(), "ir.actions.server", "run", [action])
    assert o.heard_nothing(), o.seen()  # send_email returned: any session with it is over
    got = caught(web, default, named)
    assert got[named]["recipients"]["to"] == [RECIPIENT]
    assert o.heard_nothing(), o.seen()
    assert mail_server_row(st, "loomworks", o.server_id) == f"t|{o.host}|{o.port}|{o.user}"
    assert "loomworks_dev_mail: every outgoing mail goes to mail:1025" in st.logs("odoo", tail=100000)


def test_a_copy_made_after_start_keeps_its_mail_server_and_never_uses_it(dev_stack, outside):
    """A database restored after the start (pg_dump | psql, its mail server record included):
    Odoo's default route, mail_server_id, SMTP parameters given by code and smtplib itself."""
    st, o = dev_stack, outside
    web = catcher(st)
    st.exec("postgres", "sh", "-c", "createdb -h /var/run/postgresql -U postgres -O odoo prodcopy && "
            "pg_dump -h /var/run/postgresql -U postgres loomworks | "
            "psql -h /var/run/postgresql -U postgres -XAqt -v ON_ERROR_STOP=1 -o /dev/null prodcopy")
    before = mail_server_row(st, "prodcopy", o.server_id)
    assert before == f"t|{o.host}|{o.port}|{o.user}"
    default, named = subject("copy default route"), subject("copy mail_server_id")
    params = subject("copy SMTP parameters")
    out = st.odoo_shell(
        "import smtplib\n"
        "ms = env['ir.mail_server']\n"
        "def mail(subject):\n"
        f"    return ms.build_email({SENDER!r}, [{RECIPIENT!r}], subject, 'hello')\n"
        f"assert ms.search([]).ids == [{o.server_id}]\n"
        f"ms.send_email(mail({default!r}))\n"
        f"ms.send_email(mail({named!r}), mail_server_id={o.server_id})\n"
        f"ms.send_email(mail({params!r}), smtp_server={o.host!r}, smtp_port={o.port}, "
        f"smtp_user={o.user!r}, smtp_password={o.password!r})\n"
        "try:\n"
        f"    smtplib.SMTP({o.host!r}, {o.port}, timeout=10).quit()\n"
        "    print('SMTPLIB-REACHED')\n"
        "except ConnectionRefusedError as exc:\n"
        "    print('SMTPLIB-REFUSED', exc)\n"
        "print('SENT')\n", db="prodcopy")
    assert "SENT" in out, out[-3000:]
    assert o.heard_nothing(), o.seen()
    assert f"SMTPLIB-REFUSED loomworks_dev_mail: SMTP to {o.host}:{o.port} refused" in out, out[-3000:]
    caught(web, default, named, params)
    assert o.heard_nothing(), o.seen()
    # the guard writes nothing: the copy's record is as it came
    assert mail_server_row(st, "prodcopy", o.server_id) == before
