"""`docker compose up` on a machine without the images builds them and never pulls."""

from __future__ import annotations

import subprocess
import uuid

import pytest

from tests.support.compose import Stack

pytestmark = pytest.mark.docker


def test_missing_image_is_built_not_pulled(base_image: str):
    tag = f"lwtest-{uuid.uuid4().hex[:8]}"
    st = Stack(tag=tag)
    try:
        r = st.run("up", "-d", "redis", timeout=600)
        out = r.stdout + r.stderr
        assert "Pulling" not in out and "registry" not in out.lower(), out
        inspect = subprocess.run(["docker", "image", "inspect", f"loomworks/redis:{tag}"],
                                 capture_output=True, text=True, check=False)
        assert inspect.returncode == 0, f"loomworks/redis:{tag} was not built:\n{out}"
        st.wait_service_healthy("redis")
    finally:
        st.destroy()
        subprocess.run(["docker", "image", "rm", "-f", f"loomworks/redis:{tag}"], capture_output=True,
                       check=False)
