"""Swarm fixtures: the test images (the session's ERP image plus the test addon, a second
version of it for rolling updates, and a never-healthy one) and one Swarm stack per module
(tests/support/swarm.py), removed afterwards (nothing of it may be left) with the swarm it
created."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.drill import drill  # noqa: F401 - the drills' results recorder (make swarm-drills)
from tests.support.images import REPO, build, tag
from tests.support.swarm import SwarmStack, leave_created_swarm

DOCKERFILE = "tests/swarm/images/Dockerfile"


def lwtest_image(erp_image: str, version: str, target: str = "lwtest") -> str:
    return build(tag(f"erp-lwtest-{target}-{version}"), dockerfile=DOCKERFILE, target=target,
                 build_args={"BASE": erp_image, "VERSION": version}, context=REPO / "tests")


@pytest.fixture(scope="session")
def lwtest_images(erp_image: str) -> dict[str, str]:
    """``v1`` (deployed first), ``v2`` (an update), ``bad`` (never healthy)."""
    return {"v1": lwtest_image(erp_image, "1"), "v2": lwtest_image(erp_image, "2"),
            "bad": lwtest_image(erp_image, "3", "never-healthy")}


@pytest.fixture(scope="session")
def swarm_session() -> Iterator[None]:
    """The swarm a module's stack creates is left once, at the end of the session."""
    yield
    leave_created_swarm()


@pytest.fixture(scope="module")
def swarm(swarm_session, stack_tag: str, lwtest_images: dict[str, str]) -> Iterator[SwarmStack]:
    st = SwarmStack(tag=stack_tag, replicas=3, cron_replicas=2, erp_image=lwtest_images["v1"]).up()
    try:
        yield st
    finally:
        down = st.destroy(leave=False)
    assert down.returncode == 0, f"swarm/stack down of {st.name} failed:\n{down.stderr[-3000:]}"
    assert st.leftovers() == {"containers": [], "volumes": []}
