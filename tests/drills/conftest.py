"""Drill fixtures: one Compose project per test module (``lwtest-drill-*``, the kit's
``Stack``), and a recorder for the results table (tests/drills/report.py).

``LW_DRILL_RESULTS`` names a JSON-lines file: each drill appends
``{"drill", "outcome", "recover_s", "test"}``. Without it the line is only printed.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator

import pytest

from tests.support.compose import Stack

PREFIX = "lwtest-drill"


def start_stack(tag: str, files: tuple[str, ...] = ("docker-compose.yml",),
                env: dict[str, str] | None = None) -> Stack:
    st = Stack(files=files, tag=tag, extra_env=env or {}, prefix=PREFIX)
    try:
        start = time.monotonic()
        st.up()
        st.wait_healthy(timeout=900)
        print(f"\n{st.project}: all healthy {time.monotonic() - start:.1f}s after `up`")
    except BaseException:
        st.destroy()
        raise
    return st


@pytest.fixture(scope="module")
def stack_factory(stack_tag: str) -> Iterator[Callable[..., Stack]]:
    made: list[Stack] = []

    def make(files: tuple[str, ...] = ("docker-compose.yml",), env: dict[str, str] | None = None) -> Stack:
        st = start_stack(stack_tag, files, env)
        made.append(st)
        return st

    yield make
    for st in made:
        st.destroy()


@pytest.fixture
def drill(request: pytest.FixtureRequest) -> Callable[..., None]:
    """record(name, outcome, recover_s=None): one row of the results table."""

    def record(name: str, outcome: str, recover_s: float | None = None) -> None:
        row = {"drill": name, "outcome": outcome,
               "recover_s": None if recover_s is None else round(recover_s, 1),
               "test": request.node.nodeid}
        print(f"\nDRILL {json.dumps(row)}")
        path = os.environ.get("LW_DRILL_RESULTS")
        if path:
            with open(path, "a", encoding="utf-8") as f:
                f.write(json.dumps(row) + "\n")

    return record
