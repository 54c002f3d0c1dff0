"""A customer invoice printed through the whole stack, as a user does: HTTPS on nginx with a
tenant's host name (multi-tenant: DB_NAME empty, DBFILTER=^%d$), Odoo's Accounting, the
image's PDF renderer. The PDF's text holds the invoice's own content; with the patched
wkhtmltox (PDF_RENDERER=wkhtmltox) it holds the company's header and footer too."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import pytest
import urllib3
from PyPDF2 import PdfReader

from tests.support.compose import Stack
from tests.support.images import PDF_RENDERER

pytestmark = [pytest.mark.docker, pytest.mark.odoo,
              pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")]

DOMAIN = "loomworks.localhost"
TENANT = "acme"
HOST = f"{TENANT}.{DOMAIN}"
PARTNER = "Lwtest Printing Customer"
LINE = "Lwtest hand-woven widget"


@pytest.fixture(scope="module")
def stack(stack_tag: str) -> Iterator[Stack]:
    st = Stack(tag=stack_tag, extra_env={"DB_NAME": "", "DBFILTER": "^%d$", "LOOMWORKS_DOMAIN": DOMAIN})
    try:
        st.start()
        # the tenant's database with Accounting, made as an operator would, in the container
        st.run("exec", "-T", "odoo", "odoo", "-d", TENANT, "-i", "account", "--without-demo=all",
               "--stop-after-init", "--no-http", timeout=1500)
        yield st
    finally:
        st.destroy()


class Tenant:
    """HTTPS to nginx with SNI and Host naming the tenant; keeps Odoo's session cookie."""

    def __init__(self, stack: Stack) -> None:
        self.pool = urllib3.HTTPSConnectionPool("127.0.0.1", stack.ports["HTTPS_PORT"], server_hostname=HOST,
                                                cert_reqs="CERT_NONE", assert_hostname=False, timeout=300)
        self.cookie = ""

    def request(self, method: str, path: str, body: bytes | None = None) -> urllib3.HTTPResponse:
        headers = {"Host": HOST, "Content-Type": "application/json"}
        if self.cookie:
            headers["Cookie"] = self.cookie
        r = self.pool.request(method, path, body=body, headers=headers, retries=False)
        if r.headers.get("Set-Cookie", "").startswith("session_id="):
            self.cookie = r.headers["Set-Cookie"].split(";", 1)[0]
        return r

    def rpc(self, path: str, params: dict) -> object:
        r = self.request("POST", path, json.dumps({"jsonrpc": "2.0", "method": "call", "id": 1,
                                                   "params": params}).encode())
        assert r.status == 200, r.data[:500]
        answer = json.loads(r.data)
        assert "error" not in answer, json.dumps(answer["error"])[:2000]
        return answer["result"]

    def call(self, model: str, method: str, *args: object, **kwargs: object) -> object:
        return self.rpc(f"/web/dataset/call_kw/{model}/{method}",
                        {"model": model, "method": method, "args": list(args), "kwargs": kwargs})


def test_invoice_pdf_through_tls_and_a_tenant_host_holds_the_invoice(stack: Stack):
    tenant = Tenant(stack)
    session = tenant.rpc("/web/session/authenticate", {"db": TENANT, "login": "admin", "password": "admin"})
    assert session["uid"] == 2 and session["db"] == TENANT
    partner = tenant.call("res.partner", "create", {"name": PARTNER, "city": "Lwtestville"})
    move = tenant.call("account.move", "create", {
        "move_type": "out_invoice", "partner_id": partner,
        "invoice_line_ids": [(0, 0, {"name": LINE, "quantity": 3, "price_unit": 123.45})]})
    tenant.call("account.move", "action_post", [move])
    (invoice,) = tenant.call("account.move", "read", [move], ["name", "state", "company_id"])
    assert invoice["state"] == "posted"

    r = tenant.request("GET", f"/report/pdf/account.report_invoice/{move}")
    assert r.status == 200, r.data[:1000]
    assert r.headers["Content-Type"] == "application/pdf" and r.data.startswith(b"%PDF-")
    text = " ".join((page.extract_text() or "") for page in PdfReader(io.BytesIO(r.data)).pages)
    text = " ".join(text.split())
    for own in (invoice["name"], PARTNER, "Lwtestville", LINE, "370.35"):
        assert own in text, f"{own!r} not in the PDF's text: {text[:1500]}"
    if PDF_RENDERER == "wkhtmltox":  # the external layout's header: the company's name
        assert invoice["company_id"][1] in text, text[:1500]
