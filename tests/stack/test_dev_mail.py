"""The development override's mail catcher: Odoo (the dev image, the whole dev stack) sends a
mail, and the catcher's web page shows it; nothing is delivered anywhere else."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
import requests

from tests.support.compose import Stack
from tests.support.wait import wait_for

pytestmark = [pytest.mark.docker, pytest.mark.odoo]

DEV = ("docker-compose.yml", "docker-compose.dev.yml")


@pytest.fixture(scope="module")
def dev_stack(stack_tag: str, erp_dev_image: str) -> Iterator[Stack]:
    st = Stack(files=DEV, prefix="lwtest-devmail")
    st.start()
    try:
        yield st
    finally:
        st.destroy()


def test_mail_from_odoo_lands_in_the_catcher(dev_stack):
    st = dev_stack
    web = f"http://127.0.0.1:{st.ports['MAIL_WEB_HOST_PORT']}"
    wait_for(lambda: requests.get(f"{web}/messages/", timeout=5).ok, 120, "the mail catcher's web page")
    subject = f"lwtest dev mail {secrets.token_hex(4)}"
    script = ("ms = env['ir.mail_server']\n"
              "ms.send_email(ms.build_email('dev@loomworks.localhost', ['customer@example.com'], "
              f"'{subject}', 'hello from dev'))\nprint('SENT')\n")
    # the server's debugger already listens on DEBUGPY_PORT: this shell runs without one
    shell = f"printf %s \"{script}\" | env -u DEBUGPY_PORT odoo shell -d loomworks --no-http --log-level=warn"
    r = st.run("exec", "-T", "odoo", "bash", "-c", shell, timeout=300)
    assert "SENT" in r.stdout, r.stdout[-3000:] + r.stderr[-3000:]

    def caught() -> dict | None:
        msgs = requests.get(f"{web}/messages/", timeout=5).json()["messages"]
        return next((m for m in msgs if m["subject"] == subject), None)

    msg = wait_for(caught, 60, "the mail in the catcher")
    assert msg["recipients"]["to"] == ["customer@example.com"]
    body = requests.get(f"{web}/messages/{msg['id']}.plain", timeout=5)
    assert body.status_code == 200 and "hello from dev" in body.text
    page = requests.get(web, timeout=5)
    assert page.status_code == 200 and "MailDump" in page.text
