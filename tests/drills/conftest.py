"""Drill fixtures: one Compose project per test module (``lwtest-drill-*``, the kit's
``Stack``), and a recorder for the results table (tests/drills/report.py).

``LW_DRILL_RESULTS`` names a JSON-lines file: each drill appends
``{"drill", "outcome", "recover_s", "test", "case", "expected_loss"}`` (``case``: which
parametrized case, or null; ``expected_loss``: the drill measures a loss the design accepts,
e.g. the commits outside the WAL archive when the data volume is destroyed without a WAL
stream, so its outcome may state the figure). Without it the line is only printed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator

import pytest

from tests.support.compose import Stack


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


@pytest.fixture
def drill(request: pytest.FixtureRequest) -> Callable[..., None]:
    """record(name, outcome, recover_s=None, case=None, expected_loss=False): one row of the
    results table; rows of one drill with the same outcome are merged, naming their cases."""

    def record(name: str, outcome: str, recover_s: float | None = None, case: str | None = None,
               expected_loss: bool = False) -> None:
        row = {"drill": name, "outcome": outcome,
               "recover_s": None if recover_s is None else round(recover_s, 1),
               "test": request.node.nodeid, "case": case, "expected_loss": expected_loss}
        print(f"\nDRILL {json.dumps(row)}")
        path = os.environ.get("LW_DRILL_RESULTS")
        if path:
            with open(path, "a", encoding="utf-8") as f:
                f.write(json.dumps(row) + "\n")

    return record
