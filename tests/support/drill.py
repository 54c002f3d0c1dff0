"""The drills' results recorder, a fixture for tests/drills and tests/swarm (make drills, make
swarm-drills): ``drill(name, outcome, recover_s=None, case=None, expected_loss=False)`` appends one
JSON line ``{"drill", "outcome", "recover_s", "test", "case", "expected_loss"}`` to the file
``LW_DRILL_RESULTS`` names (without it the line is only printed); tests/support/drill_report.py builds
the README table from it. ``case``: which parametrized case, or null; ``expected_loss``: the drill
measures a loss the design accepts (e.g. the commits outside the WAL archive when the data volume
is destroyed without a WAL stream), so its outcome may state the figure."""

from __future__ import annotations

import json
import os
from collections.abc import Callable

import pytest


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
