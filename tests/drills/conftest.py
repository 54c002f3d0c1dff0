"""Drill fixtures: one Compose project per test module (``lwtest-drill-*``, the kit's
``Stack``), and the results recorder ``drill`` (tests/support/drill.py: what it writes to
``LW_DRILL_RESULTS`` for tests/support/drill_report.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.support.compose import Stack
from tests.support.drill import drill  # noqa: F401 - the results recorder, a fixture


@pytest.fixture(scope="module")
def stacks(stack_tag: str) -> Iterator[Callable[..., Stack]]:
    """Factory: ``stacks(files, env, start=True)`` -> a ``lwtest-drill-*`` project of the session's
    images, up and healthy unless ``start`` is false; all destroyed after the module."""
    made: list[Stack] = []

    def make(files: tuple[str, ...] = ("docker-compose.yml",), env: dict[str, str] | None = None,
             start: bool = True) -> Stack:
        made.append(st := Stack(files=files, tag=stack_tag, extra_env=env or {}, prefix="lwtest-drill"))
        return st.start() if start else st

    yield make
    for st in made:
        st.destroy()
