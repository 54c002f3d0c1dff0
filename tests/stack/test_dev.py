"""The development override with the real dev image: live addons, debugpy on 5678."""

from __future__ import annotations

import json
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.support import bus
from tests.support.compose import REPO, Stack
from tests.support.containers import SLOW_ADDON, make_readable
from tests.support.images import TAG
from tests.support.nginx import ws_connect
from tests.support.wait import wait_for

pytestmark = [pytest.mark.docker, pytest.mark.odoo]

DEV = ("docker-compose.yml", "docker-compose.dev.yml")

CONTROLLER = '''from odoo import http


class LiveCheck(http.Controller):
    @http.route("/lwtest/live", type="http", auth="none", methods=["GET"])
    def live(self):
        return "{version}"
'''


def write_probe_addon(addons: Path, version: str) -> Path:
    mod = addons / "lwtest_live"
    (mod / "controllers").mkdir(parents=True, exist_ok=True)
    (mod / "__manifest__.py").write_text(
        '{"name": "lwtest live reload probe", "version": "18.0.1.0.0", "depends": ["web"],'
        ' "license": "LGPL-3", "installable": True}\n')
    (mod / "__init__.py").write_text("from . import controllers\n")
    (mod / "controllers" / "__init__.py").write_text("from . import main\n")
    controller = mod / "controllers" / "main.py"
    controller.write_text(CONTROLLER.format(version=version))
    return controller


@pytest.fixture(scope="module")
def addons(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("dev-addons") / "addons"
    shutil.copytree(REPO / "addons", root, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(SLOW_ADDON, root / SLOW_ADDON.name, ignore=shutil.ignore_patterns("__pycache__"))
    write_probe_addon(root, "v1")
    make_readable(root)
    return root


@pytest.fixture(scope="module")
def dev_stack(erp_dev_image, stack_tag, addons: Path) -> Iterator[Stack]:
    st = Stack(files=DEV, tag=stack_tag, extra_env={"LOOMWORKS_ADDONS_DIR": str(addons)})
    try:
        yield st.start()
    finally:
        st.destroy()


def get_text(url: str) -> str | None:
    try:
        r = requests.get(url, timeout=5)
    except requests.RequestException:
        return None
    return r.text if r.status_code == 200 else None


# --- a minimal DAP client (Content-Length framing, JSON bodies) ---------------------


def dap_send(sock: socket.socket, seq: int, command: str, arguments: dict) -> None:
    body = json.dumps({"seq": seq, "type": "request", "command": command, "arguments": arguments}).encode()
    sock.sendall(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))


def dap_read(sock: socket.socket, buf: bytearray) -> dict:
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("debug adapter closed the connection")
        buf += chunk
    head, _, rest = bytes(buf).partition(b"\r\n\r\n")
    headers = dict(line.split(b":", 1) for line in head.split(b"\r\n") if b":" in line)
    length = int(headers[b"Content-Length"].strip())
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("debug adapter closed the connection")
        rest += chunk
    buf[:] = rest[length:]
    return json.loads(rest[:length])


def dap_initialize(port: int, timeout: float = 15) -> dict:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        dap_send(sock, 1, "initialize", {"clientID": "lwtest", "adapterID": "debugpy",
                                         "pathFormat": "path", "linesStartAt1": True})
        buf = bytearray()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = dap_read(sock, buf)
            if msg.get("type") == "response" and msg.get("command") == "initialize":
                dap_send(sock, 2, "disconnect", {"terminateDebuggee": False})
                return msg
    raise TimeoutError("no initialize response")


def test_dev_stack_is_healthy_with_the_threaded_server(dev_stack: Stack):
    attrs = dev_stack.inspect("odoo")
    assert attrs["Config"]["Image"] == f"loomworks/erp-dev:{TAG}"
    assert attrs["HostConfig"]["NanoCpus"] == 0 and attrs["HostConfig"]["Memory"] == 0
    assert requests.get(dev_stack.url("/web/health"), timeout=10).status_code == 200
    assert get_text(dev_stack.url("/lwtest/live")) == "v1"


def test_websocket_delivers_bus_notifications_on_the_local_port_in_dev(dev_stack: Stack):
    """The threaded server serves /websocket itself: a notification sent through the real bus
    reaches a subscribed client through nginx."""
    ws = ws_connect(dev_stack.ports["HTTP_LOCAL_PORT"], "127.0.0.1", bus.WS_PATH, source="127.0.0.1")

    def send(channel: str, token: str) -> None:
        assert get_text(dev_stack.url(bus.send_path(channel, token))) == f"sent {token}"

    try:
        assert ws.getstatus() == 101
        bus.round_trip(ws, send)
    finally:
        ws.close()


def test_debugpy_answers_initialize_on_5678(dev_stack: Stack):
    msg = dap_initialize(dev_stack.ports["DEBUGPY_HOST_PORT"])
    assert msg["success"] is True
    assert "supportsConfigurationDoneRequest" in msg.get("body", {})


def test_python_change_on_the_host_is_served_without_rebuild(dev_stack: Stack, addons: Path):
    before = dev_stack.inspect("odoo")
    controller = write_probe_addon(addons, "v2")
    make_readable(controller.parent)
    url = dev_stack.url("/lwtest/live")
    wait_for(lambda: get_text(url) == "v2", 120, "/lwtest/live to answer v2 after the edit", interval=1)
    after = dev_stack.inspect("odoo")
    # Same container, same image, same process tree: Odoo re-executed itself in place
    # (no rebuild, no re-creation, no restart by the restart policy).
    assert after["Id"] == before["Id"]
    assert after["Image"] == before["Image"]
    assert after["RestartCount"] == before["RestartCount"]
    assert after["State"]["StartedAt"] == before["State"]["StartedAt"]
    wait_for(lambda: dev_stack.health("odoo") == "healthy", 120, "odoo healthy after the reload")


def test_debugpy_still_answers_after_a_reload(dev_stack: Stack):
    def answers() -> bool:
        try:
            return dap_initialize(dev_stack.ports["DEBUGPY_HOST_PORT"], timeout=5)["success"]
        except (OSError, TimeoutError, ConnectionError):
            return False

    wait_for(answers, 60, "debugpy to answer after the reload", interval=1)
