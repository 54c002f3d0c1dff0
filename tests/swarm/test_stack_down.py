"""`PURGE=1 swarm/stack down` removes the stack's volumes also when the engine is in no swarm
any more (a plain `make swarm-down` left the swarm `up` created; the volumes outlive it), and
joins no swarm for it. Runs in `make test`: no swarm is needed."""

from __future__ import annotations

import pytest

from tests.support.compose import docker
from tests.support.swarm import SwarmStack, swarm_state

pytestmark = [pytest.mark.docker]


def test_purge_after_the_swarm_was_left_removes_the_stack_volumes():
    if swarm_state() != "inactive":
        pytest.skip("the engine is in a swarm: this is the path of an engine in none")
    st = SwarmStack()
    volume = f"{st.name}_postgres_data"
    docker("volume", "create", "--label", f"com.docker.stack.namespace={st.name}", volume)
    try:
        down = st.destroy()
        assert down.returncode == 0, down.stderr
        assert f"volumes of {st.name} removed" in down.stderr, down.stderr
        assert st.leftovers()["volumes"] == []
        assert swarm_state() == "inactive"
    finally:
        docker("volume", "rm", "-f", volume, check=False)
